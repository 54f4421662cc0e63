"""The `qwqrl` command: help for every subcommand, exit codes, the torch-free packages."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from qwqrl.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
SUBCOMMANDS = ["train", "demo", "score", "eval", "recipe", "sandbox", "rm", "rehearse"]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "qwqrl", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_subcommand_has_help(command: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args([command, "--help"])
    assert e.value.code == 0
    assert "usage: qwqrl " + command in capsys.readouterr().out


def test_a_user_error_exits_2_with_a_message(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "r.yaml"
    bad.write_text("name: x\nmodel: {tiny: {}}\nstages: []\n")
    assert main(["recipe", "check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "stages" in err and "Traceback" not in err
    assert main(["recipe", "check", str(tmp_path / "missing.yaml")]) == 2
    assert main(["train", str(bad)]) == 2


def test_every_shipped_recipe_checks_ok() -> None:
    for recipe in sorted((ROOT / "recipes").rglob("*.yaml")):
        assert main(["recipe", "check", str(recipe)]) == 0, recipe


def test_bad_usage_exits_2_and_version_prints() -> None:
    assert run("no-such-command").returncode == 2
    out = run("--version")
    assert out.returncode == 0 and out.stdout.startswith("qwqrl ")


BLOCK_TORCH = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('torch', 'transformers', 'deepspeed', 'trl'):
            raise ImportError('blocked: ' + name)
sys.meta_path.insert(0, Block())
import qwqrl.verifiers.registry, qwqrl.verifiers.math, qwqrl.verifiers.code
import qwqrl.verifiers.format, qwqrl.verifiers.overlong, qwqrl.verifiers.reward_model
import qwqrl.verifiers.ifeval.verifier, qwqrl.verifiers.tool_call
import qwqrl.sandbox.server, qwqrl.sandbox.client, qwqrl.sandbox.local
from qwqrl.verifiers.registry import verify_batch
v = verify_batch('format', [{'completion': 'a</think>b'}])
assert v[0].score == 1.0, v
print('ok')
"""


def test_verifiers_and_sandbox_import_without_torch() -> None:
    out = subprocess.run([sys.executable, "-c", BLOCK_TORCH], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr

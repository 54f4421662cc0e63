"""A run killed with SIGKILL mid-stage and resumed ends exactly where an uninterrupted run does;
stage two starts from stage one's final weights; `--stages` runs a subset."""
from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

from qwqrl.cli import main
from tests.trainer.conftest import rl_recipe, write

VOLATILE = ("time", "timing/")


def two_stages(tmp_path: Path, run: str, steps: int = 6) -> dict:
    recipe = rl_recipe(tmp_path, run=run, steps=steps)
    recipe["stages"][0]["name"] = "one"
    recipe["stages"][0]["trainer"]["max_steps"] = 2
    second = copy.deepcopy(recipe["stages"][0])
    second.update(name="two", checkpoint={"every": 2, "keep": 1})
    second["trainer"]["max_steps"] = steps
    recipe["stages"].append(second)
    return recipe


def metrics(run_dir: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if not k.startswith(VOLATILE)} for r in rows]


def weights(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path / "model.safetensors"))


def run_cli(args: list[str], cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)  # each run makes its own process group
    return subprocess.Popen([sys.executable, "-m", "qwqrl", *args], cwd=cwd, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def test_sigkill_mid_stage_then_resume_matches_an_uninterrupted_run(tmp_path: Path) -> None:
    whole = write(tmp_path, two_stages(tmp_path, "whole"), "whole.yaml")
    killed = write(tmp_path, two_stages(tmp_path, "killed"), "killed.yaml")
    assert run_cli(["train", str(whole)], tmp_path).wait(timeout=600) == 0

    proc = run_cli(["train", str(killed)], tmp_path)
    progress = tmp_path / "killed" / "progress.json"
    deadline = time.monotonic() + 600
    try:
        while time.monotonic() < deadline:
            data = json.loads(progress.read_text()) if progress.exists() else {}
            current = data.get("current") or {}
            if current.get("stage") == "two" and current["checkpoint"].endswith("step-000002"):
                break
            assert proc.poll() is None, proc.stderr.read()
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert "two" not in json.loads(progress.read_text())["completed"], "killed too late"

    resumed = run_cli(["train", str(killed), "--resume"], tmp_path)
    assert resumed.wait(timeout=600) == 0, resumed.stderr.read()

    a = weights(tmp_path / "whole" / "checkpoints" / "two" / "final")
    b = weights(tmp_path / "killed" / "checkpoints" / "two" / "final")
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    assert metrics(tmp_path / "whole") == metrics(tmp_path / "killed")


def test_stage_two_starts_from_stage_one_final_weights(tmp_path: Path) -> None:
    recipe = two_stages(tmp_path, "handoff", steps=2)
    recipe["stages"][1]["trainer"]["lr"] = 1e-12  # stage two barely moves
    assert main(["train", str(write(tmp_path, recipe))]) == 0
    ckpt = tmp_path / "handoff" / "checkpoints"
    one, two = weights(ckpt / "one" / "final"), weights(ckpt / "two" / "final")
    for name in one:
        torch.testing.assert_close(two[name], one[name], rtol=0, atol=1e-6)

    # --stages 2 in a fresh run directory, starting from the first run's stage-one weights
    recipe.update(name="subset", output_dir=str(tmp_path / "subset"))
    recipe["stages"][1]["init_from"] = str(ckpt / "one" / "final")
    assert main(["train", str(write(tmp_path, recipe, "subset.yaml")), "--stages", "2"]) == 0
    done = json.loads((tmp_path / "subset" / "progress.json").read_text())["completed"]
    assert list(done) == ["two"]
    sub = weights(tmp_path / "subset" / "checkpoints" / "two" / "final")
    for name in one:
        torch.testing.assert_close(sub[name], one[name], rtol=0, atol=1e-6)

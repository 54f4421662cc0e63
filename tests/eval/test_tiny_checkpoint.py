"""A tiny checkpoint evaluated end to end on every CPU-sized suite: generation (HF), the real
verifiers (math, the local sandbox for code, IFEval, a tiny reward model), metrics and files."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from qwqrl.cli import main
from qwqrl.eval_suites import SUITES
from qwqrl.tiny import build_model, build_reward_model, build_tokenizer

CPU_SUITES = [name for name, suite in SUITES.items() if suite.cpu]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tok = build_tokenizer()
    policy, rm = tmp_path_factory.mktemp("policy"), tmp_path_factory.mktemp("rm")
    build_model(tok, seed=0).save_pretrained(policy)
    build_reward_model(tok, seed=0).save_pretrained(rm)
    for path in (policy, rm):
        tok.save_pretrained(path)
    return policy, rm


def test_every_cpu_suite_runs_on_a_tiny_checkpoint(checkpoints: tuple[Path, Path], tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture) -> None:
    monkeypatch.delenv("QWQRL_SANDBOX_URL", raising=False)
    policy, rm = checkpoints
    out = tmp_path / "out"
    code = main(["eval", str(policy), "--suite", ",".join(CPU_SUITES), "--backend", "hf",
                 "--rm", str(rm), "--limit", "3", "--max-new-tokens", "12", "--no-instructions",
                 "-o", str(out)])
    assert code == 0
    result = json.loads((out / "eval.json").read_text())
    expected = ["tiny-math/avg@4", "tiny-math/pass@1", "tiny-math/pass@2", "tiny-math/pass@4",
                "tiny-code/pass@1", "tiny-ifeval/prompt_strict", "tiny-ifeval/inst_loose",
                "tiny-general/rm_score"]
    for key in expected:
        assert key in result, key
        assert 0.0 <= result[key] <= 1.0
    assert result["settings"]["backend"] == "hf"
    assert {s: result["suites"][s]["problems"] for s in CPU_SUITES} == {s: 3 for s in CPU_SUITES}
    samples = [json.loads(x) for x in (out / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == sum(3 * SUITES[s].samples for s in CPU_SUITES)
    assert all(s["tokens"] <= 12 and isinstance(s["completion"], str) for s in samples)
    assert {s["detail"].get("verifier") for s in samples} >= {"math", "code", "ifeval"}
    table = capsys.readouterr().out
    assert "tiny math" in table and "avg@4" in table and "rm_score" in table

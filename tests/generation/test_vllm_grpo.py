"""`generation.backend: vllm` in the product: a GRPO stage run by `qwqrl train` learns as the HF
backend does, its in-training evaluation samples with the run's engine, and `qwqrl eval
--backend vllm` judges the trained checkpoint as `--backend hf` does."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from qwqrl.cli import main
from tests.trainer.conftest import rl_recipe, word_limit_data, write
from tests.trainer.test_rl_learns import rewards

from .vllm_support import VLLM_SMALL, require_vllm


def run(tmp_path: Path, backend: str) -> Path:
    recipe = rl_recipe(tmp_path, run=backend)
    recipe["model"]["tiny"]["overrides"] = VLLM_SMALL
    recipe["stages"][0]["generation"]["backend"] = backend
    recipe["eval"] = {"sets": [{"path": str(word_limit_data(tmp_path, n=16))}], "max_new_tokens": 8}
    assert main(["train", str(write(tmp_path, recipe, f"{backend}.yaml"))]) == 0
    return tmp_path / backend


@pytest.mark.vllm
def test_grpo_on_vllm_learns_like_hf_and_evaluates(tmp_path: Path, capsys) -> None:
    require_vllm()
    gains = {}
    for backend in ("hf", "vllm"):
        r = rewards(run(tmp_path, backend))
        assert len(r) == 12
        gains[backend] = sum(r[-3:]) / 3 - sum(r[:3]) / 3
        assert gains[backend] > 0.15, (backend, r)
    evals = json.loads((tmp_path / "vllm" / "evals.json").read_text())
    assert [e["stage"] for e in evals] == ["initial", "rl"]
    assert evals[1]["metrics"]["pass_rate/ifeval"] > evals[0]["metrics"]["pass_rate/ifeval"]

    checkpoint = tmp_path / "vllm" / "checkpoints" / "rl" / "final"
    data = str(tmp_path / "words.jsonl")
    scores = {}
    for backend in ("hf", "vllm"):
        out = tmp_path / f"eval-{backend}"
        assert main(["eval", str(checkpoint), "--data", data, "--backend", backend,
                     "--temperature", "0", "--samples", "1", "--max-new-tokens", "8",
                     "--no-instructions", "-o", str(out)]) == 0
        scores[backend] = json.loads((out / "eval.json").read_text())
    # greedy, float32 on both engines: the same completions up to argmax near-ties
    assert abs(scores["vllm"]["ifeval/prompt_strict"] - scores["hf"]["ifeval/prompt_strict"]) <= 1 / 16
    lengths = {b: s["suites"]["ifeval"]["mean_length"] for b, s in scores.items()}
    assert abs(lengths["vllm"] - lengths["hf"]) <= 0.5

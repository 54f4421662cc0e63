"""`qwqrl eval --recipe`: vLLM gets the engine settings the run trained with; flags win."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from qwqrl.cli import build_parser, main
from qwqrl.eval_cmd import engine_settings

QWQ = str(Path(__file__).parents[2] / "recipes" / "qwq-32b" / "two-stage.yaml")


def parse(*argv: str):
    return build_parser().parse_args(["eval", "ckpt", "--suite", "aime24", *argv])


def test_the_recipe_gives_tp_context_memory_and_yarn() -> None:
    assert engine_settings(parse("--recipe", QWQ)) == {
        "tensor_parallel_size": 4, "max_model_len": 34816, "gpu_memory_utilization": 0.55,
        "rope_scaling": {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768}}


def test_flags_replace_the_recipe_and_defaults_fill_the_rest() -> None:
    got = engine_settings(parse("--recipe", QWQ, "--tp", "8", "--yarn", "2"))
    assert got["tensor_parallel_size"] == 8 and got["rope_scaling"]["factor"] == 2.0
    assert engine_settings(parse()) == {"tensor_parallel_size": 1, "max_model_len": None,
                                        "gpu_memory_utilization": 0.9, "rope_scaling": None}


def test_vllm_without_vllm_is_a_user_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setitem(sys.modules, "vllm", None)  # what `import vllm` sees when it is absent
    # refused before any model or process group is loaded
    assert main(["eval", str(tmp_path), "--suite", "tiny-math", "--backend", "vllm"]) == 2
    assert "--backend hf" in capsys.readouterr().err

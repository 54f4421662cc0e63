"""Rewards a user brings in a recipe, without touching the project: a batch verifier and a
TRL-style function from their own module train the tiny model, and a function that raises
masks its samples and is counted instead of scoring 0."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from safetensors.torch import load_file

from qwqrl.cli import main
from tests.trainer.conftest import SMALL, rl_recipe, write

FNS = "tests.verifiers.custom_rewards"


def logged(run_dir: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if "loss" in r]


def test_a_custom_batch_verifier_and_a_trl_function_are_the_reward(tmp_path: Path) -> None:
    recipe = rl_recipe(tmp_path, run="custom", steps=3)
    recipe["stages"][0]["rewards"] = {
        "one_word": {"fn": f"{FNS}:answer_format", "weight": 1.0, "tasks": ["ifeval"],
                     "options": {"pattern": r"\S*"}},
        "short": {"fn": f"{FNS}:few_words", "weight": 0.5, "options": {"limit": 3}},
    }
    assert main(["train", str(write(tmp_path, recipe))]) == 0
    rows = logged(tmp_path / "custom")
    assert len(rows) == 3
    for row in rows:
        assert 0 < row["rewards/one_word/mean"] < 1, row  # both outcomes: groups carry signal
        assert row["reward"] == pytest.approx(row["rewards/one_word/mean"]
                                              + 0.5 * row["rewards/short/mean"], abs=1e-6)
        assert row["reward/masked_frac"] == 0.0 and "skipped_empty_batch" not in row


def test_a_raising_custom_reward_is_counted_and_its_samples_masked(tmp_path: Path, caplog) -> None:
    recipe = rl_recipe(tmp_path, run="broken", steps=2)
    recipe["stages"][0]["rewards"]["buggy"] = {"fn": f"{FNS}:broken", "weight": 0.1}
    assert main(["train", str(write(tmp_path, recipe))]) == 0
    rows = logged(tmp_path / "broken")
    samples = recipe["stages"][0]["trainer"]["batch_size"] * 8
    for row in rows:
        assert row["rewards/buggy/errors"] == samples
        assert row["reward/masked_frac"] == 1.0 and row["skipped_empty_batch"] == 1.0
    assert "custom_rewards.broken" in caplog.text and "ZeroDivisionError" in caplog.text
    from qwqrl.tiny import build_model, build_tokenizer
    initial = build_model(build_tokenizer(), seed=0, **SMALL).state_dict()
    final = load_file(str(tmp_path / "broken" / "checkpoints" / "rl" / "final" / "model.safetensors"))
    assert all((final[k] == initial[k]).all() for k in final), "masked samples must not train"

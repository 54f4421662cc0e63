"""Each algorithm, run through `qwqrl train`, raises the reward on a task a tiny model can learn."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from qwqrl.cli import main
from tests.trainer.conftest import rl_recipe, write


def rewards(run_dir: Path) -> list[float]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r["reward"] for r in rows if "loss" in r]


@pytest.mark.parametrize("algorithm", [
    {"name": "grpo"},
    {"name": "dr_grpo", "loss_agg": "seq-mean-token-sum-norm"},
    {"name": "rloo", "epochs": 2, "loss_agg": "seq-mean-token-mean"},
    {"name": "ppo", "filter_zero_std": False, "critic_lr": 1e-3},
], ids=["grpo", "dr_grpo", "rloo_2_epochs", "ppo_gae_critic"])
def test_training_raises_the_reward(tmp_path: Path, algorithm: dict) -> None:
    recipe = rl_recipe(tmp_path, run=algorithm["name"], **algorithm)
    assert main(["train", str(write(tmp_path, recipe))]) == 0
    r = rewards(tmp_path / algorithm["name"])
    assert len(r) == 12
    first, last = sum(r[:3]) / 3, sum(r[-3:]) / 3
    assert last > first + 0.15, r
    assert (tmp_path / algorithm["name"] / "checkpoints" / "rl" / "final" / "model.safetensors").exists()

"""Each algorithm, run through `qwqrl train`, raises the reward on a task a tiny model can learn."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

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


def test_lora_with_token_budget_micro_batches_trains_and_saves_merged_weights(tmp_path: Path) -> None:
    recipe = rl_recipe(tmp_path, run="lora", steps=4)
    recipe["model"]["lora"] = {"r": 4, "alpha": 8}
    recipe["stages"][0]["trainer"].update(lr=1e-2, micro_batch_tokens=96)
    assert main(["train", str(write(tmp_path, recipe))]) == 0
    from safetensors.torch import load_file

    from qwqrl.tiny import build_model, build_tokenizer
    from tests.trainer.conftest import SMALL
    saved = load_file(str(tmp_path / "lora" / "checkpoints" / "rl" / "final" / "model.safetensors"))
    initial = build_model(build_tokenizer(), seed=0, **SMALL).state_dict()
    assert not any("lora" in k for k in saved)  # merged into plain weights
    changed = [k for k in saved if "proj" in k and not torch.equal(saved[k], initial[k])]
    assert changed, "LoRA updates must reach the merged projection weights"
    assert all(torch.equal(saved[k], initial[k]) for k in saved if "norm" in k)  # frozen

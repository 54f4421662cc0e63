"""The cold-start loop: a step checkpoint resumes to the same weights as an uninterrupted run,
and the loss is the completion tokens' mean over the whole batch, however it is micro-batched."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from qwqrl.checkpoint import Progress
from qwqrl.config import SFTStage
from qwqrl.distributed import init_distributed
from qwqrl.learner import Learner
from qwqrl.sft import SFT_BETAS, SFTTrainer, tokenize
from qwqrl.tiny import build_model, build_tokenizer
from tests.trainer.conftest import SMALL

RECORDS = [{"prompt": f"{a} + {a} =", "completion": f"{2 * a}" + "!" * (a % 5)} for a in range(40)]


def trainer(run_dir: Path, micro: int = 4, steps: int = 4) -> tuple[SFTTrainer, list[dict]]:
    stage = SFTStage.model_validate({
        "name": "cold", "kind": "sft", "data": {"train": [{"synthetic": "arithmetic"}]},
        "max_length": 32, "checkpoint": {"every": 2},
        "trainer": {"lr": 3e-3, "warmup_steps": 2, "schedule": "cosine", "batch_size": 8,
                    "micro_batch_size": micro, "max_steps": steps}})
    dist = init_distributed()  # DeepSpeed needs the process group before the engine
    tok = build_tokenizer()
    learner = Learner(build_model(tok, seed=0, **SMALL), stage.trainer, total_steps=steps,
                      betas=SFT_BETAS)
    logged: list[dict] = []
    return SFTTrainer(stage, 0, learner, tok, tokenize(RECORDS, tok, lambda r: r["prompt"], 32),
                      dist, seed=0, run_dir=run_dir, progress=Progress(run_dir),
                      evaluate=None, log=lambda m, s: logged.append(m),
                      global_step=0), logged


def weights(t: SFTTrainer) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in t.learner.module.state_dict().items()}


def test_resuming_a_step_checkpoint_matches_an_uninterrupted_run(tmp_path: Path) -> None:
    whole, whole_losses = trainer(tmp_path / "whole")
    whole.train()
    first, _ = trainer(tmp_path / "cut")
    for _ in range(2):
        first.train_step()
        first.step += 1
        first.global_step += 1
    first.save()
    again, again_losses = trainer(tmp_path / "cut")
    again.resume(Progress(tmp_path / "cut").latest("cold"))
    assert (again.step, again.global_step) == (2, 2)
    again.train()
    assert [m["loss"] for m in again_losses] == pytest.approx(
        [m["loss"] for m in whole_losses[2:]], rel=1e-5)
    for name, value in weights(whole).items():
        torch.testing.assert_close(weights(again)[name], value, msg=name)


def test_the_loss_is_a_token_mean_over_the_batch_whatever_the_micro_batches(tmp_path: Path) -> None:
    one, logged_one = trainer(tmp_path / "one", micro=8, steps=1)
    four, logged_four = trainer(tmp_path / "four", micro=2, steps=1)
    one.train()
    four.train()
    # The gradient norm pins the normalisation (Adam's update would hide a scaled gradient).
    for key in ("loss", "grad_norm", "mean_token_accuracy_lb"):
        assert logged_four[0][key] == pytest.approx(logged_one[0][key], rel=1e-4), key

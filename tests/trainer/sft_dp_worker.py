"""Worker for test_sft_distributed: a few cold-start steps under ZeRO-3 on a fixed data set.

Run under torchrun; the global batch is split over the ranks. Rank 0 writes OUT/world{N}.json:
the per-step losses, and the share of all parameter elements each rank holds in its shard.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from qwqrl.checkpoint import Progress
from qwqrl.config import SFTStage
from qwqrl.distributed import init_distributed, shutdown
from qwqrl.learner import Learner
from qwqrl.sft import SFT_BETAS, SFTTrainer, tokenize
from qwqrl.tiny import build_model, build_tokenizer
from tests.trainer.conftest import SMALL

STEPS, BATCH = 4, 8


def main(out: Path) -> None:
    dist = init_distributed()
    tok = build_tokenizer()
    stage = SFTStage.model_validate({
        "name": "cold", "kind": "sft", "data": {"train": [{"synthetic": "arithmetic"}]},
        "max_length": 64, "trainer": {"lr": 3e-3, "zero_stage": 3, "batch_size": BATCH,
                                      "micro_batch_size": 2, "max_steps": STEPS}})
    records = [{"prompt": f"{a} + {b} =", "completion": f"{a + b}, because {a} plus {b}."}
               for a, b in zip(range(3, 3 + STEPS * BATCH), range(50, 50 + 3 * STEPS * BATCH, 3))]
    learner = Learner(build_model(tok, seed=0, **SMALL), stage.trainer, total_steps=STEPS,
                      betas=SFT_BETAS)
    held = sum(p.ds_tensor.numel() for p in learner.module.parameters())
    total = sum(p.ds_numel for p in learner.module.parameters())
    losses: list[float] = []
    trainer = SFTTrainer(stage, 0, learner, tok, tokenize(records, tok, lambda r: r["prompt"], 64),
                         dist, seed=0, run_dir=out, progress=Progress(out), evaluate=None,
                         log=lambda m, s: losses.append(m["loss"]), global_step=0)
    trainer.train()
    shares = [torch.zeros(1, dtype=torch.float64) for _ in range(dist.world_size)]
    torch.distributed.all_gather(shares, torch.tensor([held / total], dtype=torch.float64))
    if dist.is_main:
        (out / f"world{dist.world_size}.json").write_text(
            json.dumps({"losses": losses, "shares": [float(s) for s in shares]}))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
    shutdown()

"""Worker for test_distributed: two RL updates on one fixed batch, for ZeRO 0, 2 and 3.

Run under torchrun; each rank takes its share of the batch's groups; rank 0 saves the full
weights after the updates to OUT/zero{stage}_world{world}.pt.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

from qwqrl.checkpoint import Progress
from qwqrl.config import RLStage
from qwqrl.data.mixture import MixtureSampler
from qwqrl.distributed import init_distributed
from qwqrl.generation import Rollout
from qwqrl.generation.hf import HFGenerator
from qwqrl.learner import Learner
from qwqrl.rewards import RewardRouter
from qwqrl.rl_trainer import Batch, RLTrainer
from qwqrl.tiny import build_model, build_tokenizer
from tests.trainer.conftest import SMALL

GROUPS, G, PROMPT, COMPLETION = 4, 4, 5, 6


def fixed_batch(rank: int, world: int) -> Batch:
    """Equal-length rows, so each rank's token-mean is a fair share of the global one."""
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 256, (GROUPS * G, PROMPT + COMPLETION), generator=gen).tolist()
    rewards = torch.tensor([float(i % 3 == 0) for i in range(GROUPS * G)])
    rollouts = [Rollout(i // G, row[:PROMPT], row[PROMPT:], [0.0] * COMPLETION, "", "stop")
                for i, row in enumerate(ids)]
    records = [{"task": "ifeval", "prompt": "p"} for _ in rollouts]
    full = Batch(rollouts, records, rewards, {})
    mine = [i for g in range(rank, GROUPS, world) for i in range(g * G, (g + 1) * G)]
    return full.take(mine)


def main(out: Path) -> None:
    dist = init_distributed()
    tok = build_tokenizer()
    for zero in (0, 2, 3):
        stage = RLStage.model_validate({
            "name": "dp", "kind": "rl", "data": {"train": [{"synthetic": "arithmetic"}]},
            "rewards": {"ifeval": {}}, "algorithm": {"num_generations": G},
            "trainer": {"lr": 1e-2, "zero_stage": zero, "micro_batch_size": 4, "max_steps": 2}})
        learner = Learner(build_model(tok, seed=0, **SMALL), stage.trainer, total_steps=2)
        trainer = RLTrainer(stage, 0, learner, tok, HFGenerator(learner.module, tok),
                            RewardRouter.from_config(stage.rewards, 8), MixtureSampler([([{}], 1.0)], 0), dist,
                            tracker=None, run_dir=out, progress=Progress(out), render=str)
        batch = fixed_batch(dist.rank, dist.world_size)
        for _ in range(2):
            trainer.update(batch)
        with learner.full_weights() as module:
            state = {k: v.detach().clone() for k, v in module.state_dict().items()}
        if dist.is_main:
            torch.save(state, out / f"zero{zero}_world{dist.world_size}.pt")


if __name__ == "__main__":
    main(Path(sys.argv[1]))

"""Worker for test_distributed, run under torchrun.

1. Two RL updates on one fixed batch, for ZeRO 0, 2 and 3: each rank takes its share of the
   batch's groups; rank 0 saves the full weights after the updates to OUT/zero{stage}_world{world}.pt.
2. One step's rollouts: `trainer.batch_size` is global, so the ranks together generate
   batch_size x num_generations samples; rank 0 writes the total to OUT/rollouts_world{world}.json.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from qwqrl.config import RLStage
from qwqrl.data.mixture import MixtureSampler
from qwqrl.distributed import Dist, init_distributed, shutdown
from qwqrl.generation import Rollout
from qwqrl.generation.hf import HFGenerator
from qwqrl.learner import Learner
from qwqrl.policy_update import UpdateSettings, policy_update
from qwqrl.rewards import RewardRouter
from qwqrl.rollouts import Batch, RolloutCollector, sampling_params
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


def stage(zero: int = 0, **algorithm) -> RLStage:
    return RLStage.model_validate({
        "name": "dp", "kind": "rl", "data": {"train": [{"synthetic": "arithmetic"}]},
        "rewards": {"format": {}}, "algorithm": {"num_generations": G, **algorithm},
        "generation": {"max_new_tokens": 4},
        "trainer": {"lr": 1e-2, "zero_stage": zero, "micro_batch_size": 4, "max_steps": 2,
                    "batch_size": 2 * GROUPS}})


def updates(dist: Dist, out: Path) -> None:
    tok = build_tokenizer()
    for zero in (0, 2, 3):
        rl = stage(zero)
        learner = Learner(build_model(tok, seed=0, **SMALL), rl.trainer, total_steps=2)
        settings = UpdateSettings.for_stage(rl, tok.pad_token_id, dist.device)
        batch = fixed_batch(dist.rank, dist.world_size)
        for _ in range(2):
            policy_update(learner, batch, settings)
        with learner.full_weights() as module:
            state = {k: v.detach().clone() for k, v in module.state_dict().items()}
        if dist.is_main:
            torch.save(state, out / f"zero{zero}_world{dist.world_size}.pt")


def rollouts(dist: Dist, out: Path) -> None:
    tok = build_tokenizer()
    rl = stage(filter_zero_std=False)
    prompts = [{"task": "math", "prompt": f"{i} + {i} =", "answer": str(2 * i)} for i in range(32)]
    collector = RolloutCollector(MixtureSampler([(prompts, 1.0)], seed=0),
                                 HFGenerator(build_model(tok, seed=0, **SMALL), tok),
                                 RewardRouter.from_config(rl.rewards, 4), str,
                                 sampling_params(rl.generation), rl.algorithm, dist)
    batch, stats = collector.collect(rl.trainer.batch_size)
    per_rank: list[int] = [0] * dist.world_size
    torch.distributed.all_gather_object(per_rank, len(batch.rollouts))
    if dist.is_main:
        (out / f"rollouts_world{dist.world_size}.json").write_text(json.dumps(
            {"per_rank": per_rank, "rounds": stats["generation_rounds"],
             "expected": rl.trainer.batch_size * G}))


if __name__ == "__main__":
    dist = init_distributed()
    updates(dist, Path(sys.argv[1]))
    rollouts(dist, Path(sys.argv[1]))
    shutdown()

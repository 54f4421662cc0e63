"""Worker for test_zero3: RL updates with a KL reference, under ZeRO 0 and ZeRO 3.

Run under torchrun. The policy starts from a tiny checkpoint on disk (so the ZeRO-3 reference is
loaded inside zero.Init from that path); each rank takes its share of a fixed batch's groups.
Rank 0 writes OUT/zero{stage}_world{world}.pt: the full weights after two updates, the reference
log-probs of the batch, and the fraction of each model's parameters every rank holds.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.distributed as torch_dist

from qwqrl.checkpoint import Progress
from qwqrl.config import RLStage
from qwqrl.data.mixture import MixtureSampler
from qwqrl.distributed import init_distributed
from qwqrl.generation.hf import HFGenerator
from qwqrl.learner import Learner
from qwqrl.models import reference_model
from qwqrl.rewards import RewardRouter
from qwqrl.rl_trainer import RLTrainer
from qwqrl.sequences import completion_logprobs, pack
from qwqrl.tiny import build_model, build_tokenizer
from tests.trainer.conftest import SMALL
from tests.trainer.dp_worker import G, fixed_batch


def held_fraction(module: torch.nn.Module) -> float:
    """Share of the model's parameters stored on this rank (ZeRO-3 keeps a flat shard each)."""
    held = sum(p.ds_tensor.numel() if hasattr(p, "ds_tensor") else p.numel() for p in module.parameters())
    total = sum(p.ds_numel if hasattr(p, "ds_numel") else p.numel() for p in module.parameters())
    return held / total


def main(out: Path) -> None:
    from transformers import AutoModelForCausalLM

    dist = init_distributed()
    tok = build_tokenizer()
    init = out / "init"
    if dist.is_main and not init.exists():
        build_model(tok, seed=0, **SMALL).save_pretrained(init)
    torch_dist.barrier()
    for zero in (0, 3):
        stage = RLStage.model_validate({
            "name": "z3", "kind": "rl", "data": {"train": [{"synthetic": "arithmetic"}]},
            "rewards": {"ifeval": {}},
            "algorithm": {"num_generations": G, "kl": {"beta": 0.5, "mode": "loss"}},
            "trainer": {"lr": 1e-2, "zero_stage": zero, "micro_batch_size": 4, "max_steps": 2}})
        model = AutoModelForCausalLM.from_pretrained(init, dtype=torch.float32)
        reference = reference_model(model, stage.trainer)
        learner = Learner(model, stage.trainer, total_steps=2)
        trainer = RLTrainer(stage, 0, learner, tok, HFGenerator(learner.module, tok),
                            RewardRouter(stage.rewards, 8), MixtureSampler([([{}], 1.0)], 0), dist,
                            tracker=None, run_dir=out, progress=Progress(out), render=str,
                            reference=reference)
        batch = fixed_batch(dist.rank, dist.world_size)
        for _ in range(2):
            trainer.update(batch)
        ref_module = getattr(reference, "module", reference)
        shares = torch.tensor([held_fraction(learner.module), held_fraction(ref_module)])
        rows = batch.rollouts
        with torch.no_grad():
            ref_lp, _ = completion_logprobs(reference, pack([r.prompt_ids for r in rows],
                                                            [r.completion_ids for r in rows], 0,
                                                            dist.device), 1.0)
        with learner.full_weights() as module:
            state = {k: v.detach().clone() for k, v in module.state_dict().items()}
        if dist.is_main:
            torch.save({"state": state, "shares": shares, "ref_logprobs": ref_lp},
                       out / f"zero{zero}_world{dist.world_size}.pt")


if __name__ == "__main__":
    main(Path(sys.argv[1]))

"""Worker for test_zero3: RL updates with a KL reference, under ZeRO 0 and ZeRO 3.

Run under torchrun. The policy starts from a tiny checkpoint on disk, loaded as the pipeline loads
it (`load_policy` with the stage's trainer: inside zero.Init under ZeRO-3, as are the KL
reference and the PPO critic); each rank takes its share of a fixed batch's groups. Before the
updates the engine's module generates greedily (the initial evaluation's path; synced_gpus
under ZeRO-3). Rank 0 writes OUT/zero{stage}_world{world}.pt: the fraction of each model's
parameters this rank held, the greedy completions, the critic's initial weights, the full
policy weights after two updates and the reference log-probs of the batch.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.distributed as torch_dist

from qwqrl.config import ModelConfig
from qwqrl.distributed import init_distributed, shutdown
from qwqrl.generation import SamplingParams
from qwqrl.generation.hf import HFGenerator
from qwqrl.generation.weights import iter_full_weights
from qwqrl.learner import Learner
from qwqrl.models import critic_model, load_policy, reference_model
from qwqrl.policy_update import UpdateSettings, policy_update
from qwqrl.sequences import completion_logprobs, pack
from qwqrl.tiny import build_model, build_tokenizer
from tests.trainer.conftest import SMALL
from tests.trainer.dp_worker import fixed_batch, stage

PROMPTS = ["1 + 2 =", "Say hi.", "3 * 4 ="]


def held_fraction(module: torch.nn.Module) -> float:
    """Share of the model's parameters stored on this rank (ZeRO-3 keeps a flat shard each)."""
    held = sum(p.ds_tensor.numel() if hasattr(p, "ds_tensor") else p.numel() for p in module.parameters())
    total = sum(p.ds_numel if hasattr(p, "ds_numel") else p.numel() for p in module.parameters())
    return held / total


def main(out: Path) -> None:
    dist = init_distributed()
    tok = build_tokenizer()
    init = out / "init"
    if dist.is_main and not init.exists():
        build_model(tok, seed=0, **SMALL).save_pretrained(init)
    torch_dist.barrier()
    for zero in (0, 3):
        rl = stage(zero, kl={"beta": 0.5, "mode": "loss"})
        model = load_policy(ModelConfig(path=str(init), dtype="float32"), tok, dist.device,
                            trainer=rl.trainer)
        loaded = held_fraction(model)  # before any engine exists
        reference = reference_model(model, rl.trainer)
        learner = Learner(model, rl.trainer, total_steps=2)
        critic = critic_model(learner.module, rl.trainer, dist.device)
        shares = torch.tensor([loaded, held_fraction(learner.module),
                               held_fraction(getattr(reference, "module", reference)), held_fraction(critic)])
        critic_state = {k: v.clone() for k, v in iter_full_weights(critic)}
        greedy = HFGenerator(learner.module, tok, batch_size=2).generate(
            PROMPTS + PROMPTS[:1], 1, SamplingParams(max_new_tokens=5, temperature=0.0))
        settings = UpdateSettings.for_stage(rl, tok.pad_token_id, dist.device)
        batch = fixed_batch(dist.rank, dist.world_size)
        for _ in range(2):
            policy_update(learner, batch, settings, reference=reference)
        rows = batch.rollouts
        with torch.no_grad():
            ref_lp, _ = completion_logprobs(reference, pack([r.prompt_ids for r in rows],
                                                            [r.completion_ids for r in rows], 0,
                                                            dist.device), 1.0)
        with learner.full_weights() as module:
            state = {k: v.detach().clone() for k, v in module.state_dict().items()}
        if dist.is_main:
            torch.save({"state": state, "shares": shares, "ref_logprobs": ref_lp,
                        "critic": critic_state, "greedy": [r.completion_ids for r in greedy]},
                       out / f"zero{zero}_world{dist.world_size}.pt")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
    shutdown()

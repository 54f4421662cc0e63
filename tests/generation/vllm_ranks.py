"""Worker for test_vllm_distributed.py, launched with 2 ranks by torch.distributed.run (gloo).

One colocated engine per rank (tensor-parallel size from argv: 1 = two engines, 2 = one engine
across both ranks). For ZeRO 0 and then ZeRO 3: a DeepSpeed learner makes a real update on
rollouts the engine sampled; before the sync the engine's log-probs are the old weights', after
`sync_weights(learner.module)` they equal the learner's new `completion_logprobs` on every rank.
"""
from __future__ import annotations

import sys

import torch

from qwqrl.config import TrainerConfig
from qwqrl.distributed import init_distributed, shutdown
from qwqrl.generation import SamplingParams, make_generator
from qwqrl.learner import Learner
from qwqrl.sequences import completion_logprobs, pack
from qwqrl.tiny import build_model, build_tokenizer
from tests.generation.vllm_support import ATOL, VLLM_SMALL, max_logprob_error

SAMPLING = SamplingParams(max_new_tokens=12, temperature=1.0, top_k=0, top_p=1.0, seed=0)


def update(learner: Learner, rollouts: list, rank: int) -> None:
    """One optimizer step of a REINFORCE-style loss with fixed signs: a real DeepSpeed update."""
    batch = pack([r.prompt_ids for r in rollouts], [r.completion_ids for r in rollouts], pad_id=0,
                 device=torch.device("cpu"))
    lp, _ = completion_logprobs(learner.engine, batch, SAMPLING.temperature)
    signs = torch.tensor([1.0 if (i + rank) % 2 else -1.0 for i in range(len(rollouts))])[:, None]
    loss = -(lp * signs * batch.completion_mask).sum() / batch.completion_mask.sum()
    learner.backward(loss, last=True)
    learner.step()


def main(tp: int) -> None:
    dist = init_distributed()  # the trainer's process group exists before the engine
    tok = build_tokenizer()
    questions = ["What is 2+2?", "hi"] if dist.rank == 0 else ["Name a prime above ten.", "7*6?", "x"]
    prompts = [tok.apply_chat_template([{"role": "user", "content": q}], tokenize=False,
                                       add_generation_prompt=True) for q in questions]
    engine = None
    for zero in (0, 3):
        cfg = TrainerConfig(lr=3e-2, zero_stage=zero, max_steps=1)
        learner = Learner(build_model(tok, seed=zero, **VLLM_SMALL), cfg, total_steps=1)
        if engine is None:
            engine = make_generator("vllm", learner.module, tok, tensor_parallel_size=tp,
                                    max_model_len=256, enforce_eager=True)
        else:
            engine.sync_weights(learner.module)
        rollouts = engine.generate(prompts, n=2, sampling=SAMPLING)
        assert [r.prompt_index for r in rollouts] == [i for i in range(len(prompts)) for _ in range(2)]
        assert max_logprob_error(learner.module, rollouts, SAMPLING) < ATOL
        update(learner, rollouts, dist.rank)
        stale = max_logprob_error(learner.module, rollouts, SAMPLING)
        assert stale > 1e-2, f"zero {zero}: the update changed nothing ({stale})"
        engine.sync_weights(learner.module)
        fresh = engine.generate(prompts, n=2, sampling=SAMPLING)
        error = max_logprob_error(learner.module, fresh, SAMPLING)
        assert error < ATOL, f"zero {zero}, tp {tp}, rank {dist.rank}: {error}"
        print(f"rank {dist.rank} zero {zero} tp {tp}: stale {stale:.3g}, synced {error:.2g}", flush=True)
    print(f"rank {dist.rank} ok", flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]))
    shutdown()

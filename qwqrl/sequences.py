"""Rollouts as padded tensors, and the learner-side log-probs of their completion tokens.

Layout (as in generation, so positions match): prompts left-padded to the micro-batch's longest
prompt P, completions right-padded to its longest completion T. Position ids come from the
attention mask, and only the last T+1 logits are computed (`logits_to_keep`), so a 150k-token
vocabulary never materialises logits over the prompt.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from qwqrl.algorithms import entropy_from_logits, selective_log_softmax


@dataclass
class Packed:
    input_ids: torch.Tensor        # (b, P + T)
    attention_mask: torch.Tensor   # (b, P + T)
    position_ids: torch.Tensor     # (b, P + T)
    completion_ids: torch.Tensor   # (b, T)
    completion_mask: torch.Tensor  # (b, T) 1 on real completion tokens

    @property
    def width(self) -> int:
        return self.completion_ids.shape[1]


def pack(prompts: list[list[int]], completions: list[list[int]], pad_id: int,
         device: torch.device) -> Packed:
    P = max(len(p) for p in prompts)
    T = max(1, max(len(c) for c in completions))
    ids = torch.full((len(prompts), P + T), pad_id, dtype=torch.long)
    attn = torch.zeros_like(ids)
    for i, (p, c) in enumerate(zip(prompts, completions)):
        ids[i, P - len(p):P] = torch.tensor(p, dtype=torch.long)
        ids[i, P:P + len(c)] = torch.tensor(c, dtype=torch.long)
        attn[i, P - len(p):P + len(c)] = 1
    position_ids = (attn.cumsum(-1) - 1).clamp(min=0)
    comp_mask = attn[:, P:].clone()
    return Packed(ids.to(device), attn.to(device), position_ids.to(device), ids[:, P:].to(device),
                  comp_mask.to(device))


def completion_logprobs(model: torch.nn.Module, batch: Packed, temperature: float,
                        with_entropy: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per-token log-probs (b, T) of the completion under log_softmax(logits / temperature).

    Returns (logprobs, entropy or None); entropy is detached, for metrics.
    """
    out = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                position_ids=batch.position_ids, logits_to_keep=batch.width + 1, use_cache=False)
    logits = out.logits[:, :-1, :]
    if temperature > 0:
        logits = logits / temperature
    logprobs = selective_log_softmax(logits, batch.completion_ids)
    entropy = None
    if with_entropy:
        with torch.no_grad():
            entropy = entropy_from_logits(logits.detach())
    return logprobs, entropy


def completion_values(critic: torch.nn.Module, batch: Packed) -> torch.Tensor:
    """Critic values (b, T): V at the state before each completion token is chosen."""
    out = critic(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                 position_ids=batch.position_ids, use_cache=False)
    values = out.logits[..., 0]
    T = batch.width
    return values[:, -T - 1:-1]

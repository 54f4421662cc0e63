"""Shaping a rollout batch before the update: which sequences and tokens the loss may see.

  - Masked samples: a reward of None (verifier error, sandbox timeout) is not a 0 reward. It is
    carried as NaN, excluded from advantage statistics (`advantages`) and from the loss here.
  - Zero-variance groups: if every completion of a prompt gets the same reward, the group-relative
    advantage is 0 and the group only dilutes the batch (DAPO, Yu et al. 2025, §3.2).
  - Dynamic sampling (DAPO §3.2): keep sampling prompts until the batch holds enough groups with
    reward spread, then drop the surplus. `dynamic_sampling` decides both: a group is kept only
    if it has spread (`qwqrl.rollouts` applies it, with or without extra rounds).
  - Overlong filtering (DAPO §3.4): a completion cut off at the length limit has no real outcome;
    mask its tokens out of the loss instead of punishing a possibly-correct chain of thought.
  - Tool responses (multi-turn rollouts, `qwqrl.tools`): tokens inside the completion that a tool
    wrote, not the model; masked out token by token.
"""

from collections.abc import Sequence
from typing import NamedTuple

import torch


def rewards_tensor(rewards: Sequence[float | None], device: torch.device | str | None = None) -> torch.Tensor:
    """Python rewards (B,) with None for masked samples -> float32 tensor (B,) with NaN for None."""
    return torch.tensor([float("nan") if r is None else float(r) for r in rewards], dtype=torch.float32,
                        device=device)


class DynamicSamplingDecision(NamedTuple):
    """keep: indices of the groups to train on (at most target_groups, in order);
    missing: how many more informative groups the batch still needs (0 = batch is full)."""

    keep: list[int]
    missing: int


def dynamic_sampling(group_rewards: Sequence[Sequence[float | None]], target_groups: int,
                     atol: float = 0.0) -> DynamicSamplingDecision:
    """DAPO dynamic sampling over the groups gathered so far.

    group_rewards: N groups, each the G rewards of one prompt's completions (None = masked).
    A group is informative if at least two valid rewards differ by more than atol. Returns the
    first `target_groups` informative groups and how many are still missing; the trainer samples
    more prompts while `missing > 0` (up to its own retry limit) and calls this again on the union.
    """
    keep = []
    for i, rewards in enumerate(group_rewards):
        scored = [r for r in rewards if r is not None]
        if len(scored) >= 2 and max(scored) - min(scored) > atol:
            keep.append(i)
    keep = keep[:target_groups]
    return DynamicSamplingDecision(keep=keep, missing=target_groups - len(keep))


def loss_mask(completion_mask: torch.Tensor, valid: torch.Tensor | None = None,
              truncated: torch.Tensor | None = None,
              action_mask: torch.Tensor | None = None) -> torch.Tensor:
    """The token mask the losses aggregate over: completion_mask (B, T) with whole rows zeroed.

    valid: (B,) bool, False for masked samples (reward None); truncated: (B,) bool, True for
    completions cut off at the length limit (overlong filtering); action_mask: (B, T), 0 on
    tokens the model did not sample (tool responses in a multi-turn rollout: context the policy
    reads, not actions it took, so no loss, KL or importance weight is computed on them).
    Returns (B, T) float 0/1.
    """
    keep = torch.ones(completion_mask.shape[0], dtype=torch.bool, device=completion_mask.device)
    if valid is not None:
        keep = keep & valid.bool()
    if truncated is not None:
        keep = keep & ~truncated.bool()
    mask = completion_mask.float() * keep.unsqueeze(-1)
    return mask * action_mask.float() if action_mask is not None else mask

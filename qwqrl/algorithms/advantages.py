"""Advantage estimators for outcome rewards: GRPO, Dr.GRPO, RLOO, and GAE for PPO with a critic.

Conventions (used by every function in this package):
  - B sequences, T completion tokens (right-padded), G completions per prompt (group size).
  - Group-based estimators take `rewards` of shape (B,) with B = N * G, the G completions of each
    prompt contiguous: rows [k*G, (k+1)*G) form group k.
  - A masked sample (reward None: the verifier failed, the sandbox timed out) has reward NaN and/or
    valid=False. It is left out of its group's mean/std or baseline and gets advantage 0; the
    loss mask (`batch_filters.loss_mask`) also removes it from the loss.

Sources:
  - GRPO: Shao et al. 2024, "DeepSeekMath" -- A_i = (r_i - mean(r_group)) / std(r_group).
  - Dr.GRPO: Liu et al. 2025, "Understanding R1-Zero-Like Training" -- drop the std division
    (it up-weights too-easy / too-hard prompts); scale="none".
  - Batch std: Liu et al. 2025, "Part I: Tricks or Traps?" (Lite PPO) -- group mean, batch std.
  - RLOO: Ahmadian et al. 2024, "Back to Basics" (Kool et al. 2019) -- leave-one-out mean baseline.
  - GAE: Schulman et al. 2015, "High-Dimensional Continuous Control Using GAE".
"""

from typing import Literal

import torch

GroupScale = Literal["group", "batch", "none"]


def valid_rewards(rewards: torch.Tensor, valid: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Split rewards into (finite rewards, valid mask).

    rewards: (B,) float, NaN for masked samples; valid: (B,) bool or None.
    Returns rewards (B,) with masked entries set to 0, and valid (B,) bool = not NaN and `valid`.
    """
    is_valid = ~torch.isnan(rewards)
    if valid is not None:
        is_valid = is_valid & valid.bool()
    return torch.where(is_valid, rewards, torch.zeros_like(rewards)), is_valid


def _grouped(rewards: torch.Tensor, valid: torch.Tensor | None,
             group_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(B,) rewards -> (N, G) rewards with masked entries 0, (N, G) float valid mask, (N, 1) counts."""
    if rewards.ndim != 1 or rewards.numel() % group_size:
        raise ValueError(f"rewards must be (B,) with B a multiple of group_size={group_size}, got {tuple(rewards.shape)}")
    rewards, valid = valid_rewards(rewards, valid)
    r, m = rewards.view(-1, group_size), valid.view(-1, group_size).to(rewards.dtype)
    return r, m, m.sum(-1, keepdim=True)


def grpo_advantages(rewards: torch.Tensor, group_size: int, scale: GroupScale = "group",
                    valid: torch.Tensor | None = None, eps: float = 1e-6) -> torch.Tensor:
    """Group-relative advantages A_i = (r_i - mean_group(r)) / s.

    rewards: (B,) with B = N * G, NaN for masked samples; valid: (B,) bool or None -> (B,).
    scale: "group" divides by each group's std (GRPO), "batch" by the std of all valid rewards in
    the batch, "none" leaves the centered reward (Dr.GRPO). Stds are unbiased (n - 1), as in
    torch.std, and `eps` is added to them, so a group whose rewards are all equal gets 0 everywhere.
    Masked samples are excluded from the statistics and get advantage 0.
    """
    r, m, count = _grouped(rewards, valid, group_size)
    mean = (r * m).sum(-1, keepdim=True) / count.clamp(min=1.0)
    centered = (r - mean) * m
    if scale == "group":
        std = ((centered ** 2).sum(-1, keepdim=True) / (count - 1.0).clamp(min=1.0)).sqrt()
        centered = centered / (std + eps)
    elif scale == "batch":
        flat_r, flat_m = r.flatten(), m.flatten()
        n = flat_m.sum()
        batch_mean = (flat_r * flat_m).sum() / n.clamp(min=1.0)
        std = (((flat_r - batch_mean) ** 2 * flat_m).sum() / (n - 1.0).clamp(min=1.0)).sqrt()
        centered = centered / (std + eps)
    elif scale != "none":
        raise ValueError(f"scale must be 'group', 'batch' or 'none', got {scale!r}")
    return centered.flatten()


def rloo_advantages(rewards: torch.Tensor, group_size: int, valid: torch.Tensor | None = None) -> torch.Tensor:
    """REINFORCE leave-one-out advantages A_i = r_i - mean_{j != i} r_j within each group.

    rewards: (B,) with B = N * G, NaN for masked samples; valid: (B,) bool or None -> (B,).
    Equals G/(G-1) * (r_i - mean(r)) for G valid samples. Masked samples are not in any baseline
    and get 0; a sample with no valid peer has no baseline and gets 0.
    """
    r, m, count = _grouped(rewards, valid, group_size)
    others = count - m  # valid peers of each sample (excluding itself when it is valid)
    baseline = ((r * m).sum(-1, keepdim=True) - r * m) / others.clamp(min=1.0)
    return ((r - baseline) * m * (others > 0)).flatten()


def outcome_token_rewards(rewards: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Place each sequence's outcome reward on its last unmasked token, zeros elsewhere.

    rewards: (B,) (NaN for masked samples becomes 0); mask: (B, T) -> (B, T) token rewards for GAE.
    A row with no unmasked token gets all zeros.
    """
    mask = mask.bool()
    positions = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
    last = torch.where(mask, positions, -1).max(dim=1).values  # (B,), -1 for an empty row
    token_rewards = torch.zeros(mask.shape, dtype=rewards.dtype, device=rewards.device)
    rows = (last >= 0).nonzero().squeeze(-1)
    token_rewards[rows, last[rows]] = torch.nan_to_num(rewards[rows], nan=0.0)
    return token_rewards


@torch.no_grad()
def gae_advantages(token_rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor,
                   gamma: float = 1.0, lam: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalized Advantage Estimation over the unmasked tokens of each sequence.

    token_rewards, values, mask: (B, T) -> (advantages (B, T), returns (B, T)), both 0 on masked
    tokens. delta_t = r_t + gamma * V_{t+1} - V_t and A_t = delta_t + gamma * lam * A_{t+1}, where
    t+1 is the next *unmasked* token (masked ones are skipped, so the recursion also works with
    holes such as tool-output tokens) and V = A = 0 after the last one. returns = A + V are the
    value-function targets. PPO whitens the result over the batch (`qwqrl.critic`).
    """
    mask = mask.bool()
    next_value = torch.zeros_like(values[:, 0])
    next_advantage = torch.zeros_like(values[:, 0])
    advantages = torch.zeros_like(values)
    for t in reversed(range(values.shape[1])):
        delta = token_rewards[:, t] + gamma * next_value - values[:, t]
        advantage = delta + gamma * lam * next_advantage
        m = mask[:, t]
        next_value = torch.where(m, values[:, t], next_value)
        next_advantage = torch.where(m, advantage, next_advantage)
        advantages[:, t] = torch.where(m, advantage, 0.0)
    return advantages, torch.where(mask, advantages + values, 0.0)

"""The clipped surrogate policy-gradient loss shared by PPO, GRPO, Dr.GRPO and DAPO.

With ratio r_t = pi(y_t) / pi_old(y_t) (pi_old: the policy that sampled the batch, so several
update epochs stay on the trust region) and advantage A_t:
  L_t = -min(r_t * A_t, clip(r_t, 1 - eps_low, 1 + eps_high) * A_t)       PPO, Schulman et al. 2017
  eps_high > eps_low ("clip-higher") leaves room for low-probability tokens to rise: DAPO, Yu et al. 2025
  for A_t < 0: L_t = min(L_t, -clip_ratio_c * A_t), clip_ratio_c > 1     dual clip, Ye et al. 2020
The loss optionally multiplies each token by a truncated importance weight (`importance_sampling`)
and adds kl_coef * KL(pi || pi_ref) per token (GRPO, DeepSeekMath), then aggregates with
`aggregation.aggregate_loss`.
"""

import torch

from qwqrl.algorithms.aggregation import LossAgg, aggregate_loss
from qwqrl.algorithms.kl import KLEstimator, kl_penalty
from qwqrl.algorithms.masked import masked_mean


def clipped_policy_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    *,
    eps_low: float = 0.2,
    eps_high: float = 0.2,
    clip_ratio_c: float | None = None,
    agg: LossAgg = "token-mean",
    max_len: int | None = None,
    ref_logprobs: torch.Tensor | None = None,
    kl_coef: float = 0.0,
    kl_estimator: KLEstimator = "k3",
    is_weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """PPO-clip loss with clip-higher, optional dual clip, TIS weights and a reference-KL term.

    logprobs: (B, T) current policy, with grad; old_logprobs: (B, T) sampling policy, no grad;
    advantages: (B,) per sequence (GRPO/RLOO) or (B, T) per token (GAE); mask: (B, T) loss mask
    (`batch_filters.loss_mask`); ref_logprobs: (B, T) reference policy, used when kl_coef > 0;
    is_weights: (B, T) from `importance_sampling.truncated_is_weights` or None.
    Returns (scalar loss, metrics), metrics detached scalars:
      loss/policy            the aggregated clipped surrogate (without the KL term)
      clip_ratio/low_mean    tokens with A < 0 and r < 1 - eps_low (gradient clipped off)
      clip_ratio/high_mean   tokens with A > 0 and r > 1 + eps_high
      clip_ratio/region_mean either of the two
      clip_ratio/dual_mean   tokens with A < 0 and r > clip_ratio_c (only with dual clip)
      approx_kl              mean k3 KL(pi_old || pi) over tokens, the update size
      ratio_mean             mean r over tokens
      kl                     mean reference KL (only with kl_coef > 0)
    """
    if clip_ratio_c is not None and clip_ratio_c <= 1.0:
        raise ValueError(f"clip_ratio_c must be > 1, got {clip_ratio_c}")
    if advantages.ndim == 1:
        advantages = advantages.unsqueeze(-1)
    log_ratio = (logprobs - old_logprobs).clamp(-20.0, 20.0)
    ratio = torch.exp(log_ratio)
    unclipped = -advantages * ratio
    clipped = -advantages * ratio.clamp(1.0 - eps_low, 1.0 + eps_high)
    per_token_loss = torch.maximum(unclipped, clipped)
    if clip_ratio_c is not None:
        dual = torch.minimum(per_token_loss, -advantages * clip_ratio_c)
        per_token_loss = torch.where(advantages < 0, dual, per_token_loss)
    if is_weights is not None:
        per_token_loss = per_token_loss * is_weights
    loss = aggregate_loss(per_token_loss, mask, agg, max_len)

    with torch.no_grad():
        low = (ratio < 1.0 - eps_low) & (advantages < 0)
        high = (ratio > 1.0 + eps_high) & (advantages > 0)
        metrics = {
            "loss/policy": loss.detach(),
            "clip_ratio/low_mean": masked_mean(low.float(), mask),
            "clip_ratio/high_mean": masked_mean(high.float(), mask),
            "clip_ratio/region_mean": masked_mean((low | high).float(), mask),
            "approx_kl": masked_mean(kl_penalty(old_logprobs, logprobs.detach(), "k3"), mask),
            "ratio_mean": masked_mean(ratio, mask),
        }
        if clip_ratio_c is not None:
            metrics["clip_ratio/dual_mean"] = masked_mean(((ratio > clip_ratio_c) & (advantages < 0)).float(), mask)

    if kl_coef > 0.0:
        if ref_logprobs is None:
            raise ValueError("kl_coef > 0 needs ref_logprobs")
        kl = kl_penalty(logprobs, ref_logprobs, kl_estimator)
        loss = loss + kl_coef * aggregate_loss(kl, mask, agg, max_len)
        metrics["kl"] = masked_mean(kl.detach(), mask)
    return loss, metrics

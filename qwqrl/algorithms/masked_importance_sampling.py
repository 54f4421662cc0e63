"""Masked importance sampling: drop tokens or sequences whose behaviour ratio leaves a band.

With ratio r_t = pi_old(y_t) / pi_behaviour(y_t) (learner before the update over the policy
that sampled: an older version in asynchronous RL, or vLLM's numerics), truncation
(`importance_sampling`) keeps every token and caps its weight; masking instead removes the
tokens whose ratio says the two policies disagree too much to trust, and keeps the others at
their full ratio, so what remains is unbiased for the kept tokens and never up-weighted beyond
the band.
- token level (IcePop, Ling team 2025): w_t = r_t if low <= r_t <= high else 0.
- sequence level (masked IS, "When Speed Kills Stability", Liu et al. 2025; verl's geometric
  level): g = exp(mean_t log r_t) over the sequence's tokens; every token of it gets w_t = g if
  low <= g <= high else 0. The geometric mean does not overflow with length as the product does.
"""

import torch

from qwqrl.algorithms.masked import masked_mean


@torch.no_grad()
def masked_is_weights(old_logprobs: torch.Tensor, gen_logprobs: torch.Tensor, mask: torch.Tensor,
                      low: float = 0.5, high: float = 2.0,
                      level: str = "token") -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Per-token weights of the token- or sequence-level mask (module docstring), no gradient.

    old_logprobs (learner, pre-update), gen_logprobs (behaviour), mask: (B, T) -> (weights
    (B, T), 0 on masked and padded tokens; metrics). Metrics: `is/masked_frac` (share of the
    mask's tokens the correction zeroes), `is/gen_kl` (k1 mean of behaviour vs old).
    """
    if level not in ("token", "sequence"):
        raise ValueError(f"level must be 'token' or 'sequence', got {level!r}")
    valid = mask.bool()
    log_r = torch.where(valid, old_logprobs - gen_logprobs, 0.0)
    if level == "sequence":
        log_r = masked_mean(log_r, valid, dim=-1)[:, None].expand_as(log_r)
    ratio = torch.exp(log_r.clamp(max=20.0))
    kept = valid & (ratio >= low) & (ratio <= high)
    weights = torch.where(kept, ratio, 0.0)
    metrics = {"is/masked_frac": masked_mean((~kept).float(), valid),
               "is/gen_kl": masked_mean(gen_logprobs - old_logprobs, valid)}
    return weights, metrics

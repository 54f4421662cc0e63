"""Clipped value-function loss for the PPO critic.

  L_t = 1/2 * max((V_t - R_t)^2, (clip(V_t, V_old_t - c, V_old_t + c) - R_t)^2)
with R_t the GAE returns and V_old_t the critic's values at rollout time: the critic, like the
policy, may not move a value prediction more than c per batch (Schulman et al. 2017, PPO; the
clipping follows OpenAI baselines' ppo2 and verl's compute_value_loss).
"""

import torch

from qwqrl.algorithms.aggregation import LossAgg, aggregate_loss
from qwqrl.algorithms.masked import masked_mean, masked_var


def clipped_value_loss(values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor,
                       clip_range: float | None = 0.2, agg: LossAgg = "token-mean",
                       max_len: int | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """values (B, T) current critic, with grad; old_values, returns, mask: (B, T).

    clip_range None gives the plain 1/2 (V - R)^2. Returns (scalar loss, metrics): `vf/clipfrac`
    (tokens where the clipped term is the larger one) and `vf/explained_var`
    (1 - Var(R - V) / Var(R)), both detached.
    """
    loss_unclipped = (values - returns) ** 2
    if clip_range is None:
        per_token_loss = loss_unclipped
        clipped_frac = torch.zeros((), device=values.device)
    else:
        values_clipped = old_values + (values - old_values).clamp(-clip_range, clip_range)
        loss_clipped = (values_clipped - returns) ** 2
        per_token_loss = torch.maximum(loss_unclipped, loss_clipped)
        clipped_frac = masked_mean((loss_clipped > loss_unclipped).float(), mask)
    loss = 0.5 * aggregate_loss(per_token_loss, mask, agg, max_len)
    with torch.no_grad():
        var_returns = masked_var(returns, mask, unbiased=False)
        var_residual = masked_var(returns - values, mask, unbiased=False)
        metrics = {
            "vf/clipfrac": clipped_frac,
            "vf/explained_var": 1.0 - var_residual / var_returns.clamp(min=1e-8),
        }
    return loss, metrics

"""Truncated importance sampling (TIS) between the rollout engine and the learner.

The generator (vLLM, bf16, its own kernels) samples from pi_gen, whose log-probs differ slightly
from those the learner recomputes for the same weights, pi_old. The PPO ratio pi/pi_old assumes
the data came from pi_old, so each token's loss is reweighted by
  w_t = min(pi_old(y_t) / pi_gen(y_t), cap),
detached; the cap trades the bias of truncation for bounded variance.
Source: Yao et al. 2025, "Your Efficient RL Framework Secretly Brings You Off-Policy RL Training"
(TRL: vllm_importance_sampling_correction / _cap; verl: TIS).
"""

import torch

from qwqrl.algorithms.masked import masked_mean
from qwqrl.algorithms.masked_importance_sampling import masked_is_weights


@torch.no_grad()
def truncated_is_weights(old_logprobs: torch.Tensor, gen_logprobs: torch.Tensor, mask: torch.Tensor,
                         cap: float = 2.0) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Per-token weights min(exp(old_logprobs - gen_logprobs), cap), no gradient.

    old_logprobs (learner, pre-update), gen_logprobs (generator), mask: (B, T) ->
    (weights (B, T), 0 on masked tokens; metrics). Pass the weights as `is_weights` to
    `policy_loss.clipped_policy_loss`. Metrics: `is/weight_mean` (before the cap),
    `is/capped_frac` (fraction of tokens at the cap), `is/gen_kl` (k1 mean of gen vs old).
    """
    log_w = old_logprobs - gen_logprobs
    raw = torch.exp(log_w.clamp(max=20.0))
    weights = torch.where(mask.bool(), raw.clamp(max=cap), 0.0)
    metrics = {
        "is/weight_mean": masked_mean(raw, mask),
        "is/capped_frac": masked_mean((raw > cap).float(), mask),
        "is/gen_kl": masked_mean(-log_w, mask),
    }
    return weights, metrics


@torch.no_grad()
def ratio_metrics(old_logprobs: torch.Tensor, gen_logprobs: torch.Tensor,
                  mask: torch.Tensor) -> dict[str, torch.Tensor]:
    """The distribution of r_t = pi_old / pi_behaviour over the mask's tokens: `is/ratio_mean`,
    `is/ratio_min`, `is/ratio_max` (min/max are 1 when nothing is masked in)."""
    valid = mask.bool()
    ratio = torch.exp((old_logprobs - gen_logprobs).clamp(max=20.0))
    if not valid.any():
        one = torch.ones((), device=ratio.device)
        return {"is/ratio_mean": one, "is/ratio_min": one, "is/ratio_max": one}
    return {"is/ratio_mean": masked_mean(ratio, valid), "is/ratio_min": ratio[valid].min(),
            "is/ratio_max": ratio[valid].max()}


def off_policy_weights(old_logprobs: torch.Tensor, gen_logprobs: torch.Tensor, mask: torch.Tensor,
                       correction: str, cap: float | None, low: float,
                       high: float) -> tuple[torch.Tensor | None, dict[str, torch.Tensor]]:
    """The recipe's `algorithm.off_policy.correction` as per-token loss weights (None: no
    correction) and its metrics with the ratio distribution. (B, T) inputs."""
    if correction == "none" or (correction == "tis" and cap is None):
        return None, {}
    if correction == "tis":
        weights, metrics = truncated_is_weights(old_logprobs, gen_logprobs, mask, cap)
    elif correction in ("token_mask", "sequence_mask"):
        weights, metrics = masked_is_weights(old_logprobs, gen_logprobs, mask, low, high,
                                             level=correction.removesuffix("_mask"))
    else:
        raise ValueError(f"unknown off-policy correction {correction!r}; expected tis, "
                         "token_mask, sequence_mask or none")
    return weights, {**metrics, **ratio_metrics(old_logprobs, gen_logprobs, mask)}

"""KL divergence to a frozen reference policy, per token, from sampled log-probs only.

With x ~ pi (the sampled token), log_ratio = log pi_ref(x) - log pi(x) and ratio = exp(log_ratio),
the estimators of KL(pi || pi_ref) from Schulman's note "Approximating KL Divergence" (2020) are
  k1 = -log_ratio                      unbiased, high variance, can be negative
  k2 = log_ratio^2 / 2                 biased, low variance, >= 0
  k3 = ratio - 1 - log_ratio           unbiased, low variance, >= 0 ("low_var_kl" in verl; GRPO)
Two uses: a loss term (GRPO: + beta * k3, aggregated like the policy loss; pass `ref_logprobs`
to `policy_loss.clipped_policy_loss`) or a per-token reward penalty (PPO/RLHF: r_t -= beta * k1,
`kl_penalized_token_rewards`).
"""

from typing import Literal

import torch

from qwqrl.algorithms.advantages import outcome_token_rewards

KLEstimator = Literal["k1", "k2", "k3"]

# exp() of a log-ratio above this overflows float32 gradients long before it means anything.
_MAX_LOG_RATIO = 20.0


def kl_penalty(logprobs: torch.Tensor, ref_logprobs: torch.Tensor, estimator: KLEstimator = "k3") -> torch.Tensor:
    """Per-token KL(pi || pi_ref) estimate. logprobs, ref_logprobs: (B, T) -> (B, T).

    Differentiable in `logprobs`. For k3 the log-ratio is clamped to +-20 so one far-off token
    cannot produce inf.
    """
    log_ratio = ref_logprobs - logprobs
    if estimator == "k1":
        return -log_ratio
    if estimator == "k2":
        return 0.5 * log_ratio ** 2
    if estimator == "k3":
        log_ratio = log_ratio.clamp(-_MAX_LOG_RATIO, _MAX_LOG_RATIO)
        return torch.exp(log_ratio) - 1.0 - log_ratio
    raise ValueError(f"estimator must be 'k1', 'k2' or 'k3', got {estimator!r}")


@torch.no_grad()
def kl_penalized_token_rewards(rewards: torch.Tensor, mask: torch.Tensor, logprobs: torch.Tensor,
                               ref_logprobs: torch.Tensor, kl_coef: float,
                               estimator: KLEstimator = "k1") -> torch.Tensor:
    """PPO token rewards: the outcome reward on the last token minus kl_coef * KL on every token.

    rewards: (B,) (NaN = masked sample, becomes 0); mask, logprobs (rollout policy), ref_logprobs:
    (B, T) -> (B, T), 0 on masked tokens. Feed the result to `advantages.gae_advantages`.
    """
    kl = torch.where(mask.bool(), kl_penalty(logprobs, ref_logprobs, estimator), 0.0)
    return outcome_token_rewards(rewards, mask) - kl_coef * kl

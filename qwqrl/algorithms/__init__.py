"""The RL algorithm layer: pure tensor functions, no models, no I/O.

Shapes: B sequences, T completion tokens (right-padded), G completions per prompt, B = N * G with
each prompt's group contiguous. Rewards are (B,) float with NaN for masked samples (reward None);
see `advantages` for that convention. One concept per module:
  masked              masked_mean / masked_sum / masked_var
  logprobs            selective_log_softmax, entropy_from_logits, chunked_token_logprobs (LM head
                      in token chunks)
  advantages          GRPO (group / batch / no std), RLOO, GAE for PPO
  kl                  k1 / k2 / k3 reference-KL estimators, KL as a PPO reward penalty
  importance_sampling truncated IS weights between generator and learner log-probs, and the
                      recipe's choice of correction (`off_policy_weights`)
  masked_importance_sampling  token (IcePop) / sequence masking of ratios outside a band
  aggregation         token-mean / seq-mean-token-mean / seq-mean-token-sum(-norm)
  policy_loss         clipped surrogate with clip-higher, dual clip, TIS and a KL term
  value_loss          clipped critic loss
  batch_filters       zero-variance groups, DAPO dynamic sampling, overlong and masked samples
"""

from qwqrl.algorithms.advantages import (GroupScale, gae_advantages, grpo_advantages, outcome_token_rewards,
                                         rloo_advantages, valid_rewards)
from qwqrl.algorithms.aggregation import LossAgg, aggregate_loss
from qwqrl.algorithms.batch_filters import (DynamicSamplingDecision, dynamic_sampling, loss_mask,
                                            rewards_tensor)
from qwqrl.algorithms.importance_sampling import off_policy_weights, ratio_metrics, truncated_is_weights
from qwqrl.algorithms.kl import KLEstimator, kl_penalized_token_rewards, kl_penalty
from qwqrl.algorithms.logprobs import chunked_token_logprobs, entropy_from_logits, selective_log_softmax
from qwqrl.algorithms.masked import masked_mean, masked_sum, masked_var
from qwqrl.algorithms.masked_importance_sampling import masked_is_weights
from qwqrl.algorithms.policy_loss import clipped_policy_loss
from qwqrl.algorithms.value_loss import clipped_value_loss

__all__ = [
    "DynamicSamplingDecision", "GroupScale", "chunked_token_logprobs", "KLEstimator", "LossAgg", "aggregate_loss", "clipped_policy_loss",
    "clipped_value_loss", "dynamic_sampling", "entropy_from_logits", "gae_advantages", "grpo_advantages",
    "kl_penalized_token_rewards", "kl_penalty", "loss_mask", "masked_is_weights", "masked_mean", "masked_sum", "masked_var",
    "off_policy_weights", "outcome_token_rewards", "ratio_metrics", "rewards_tensor", "rloo_advantages",
    "selective_log_softmax", "truncated_is_weights", "valid_rewards",
]

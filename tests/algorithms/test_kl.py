import math

import pytest
import torch

from qwqrl.algorithms import kl_penalized_token_rewards, kl_penalty, truncated_is_weights

# token 0: pi = .5, pi_ref = .25 -> log_ratio = log(pi_ref / pi) = -log 2
# token 1: pi = .25, pi_ref = .5 -> log_ratio = +log 2
LOGPROBS = torch.log(torch.tensor([[0.5, 0.25]]))
REF = torch.log(torch.tensor([[0.25, 0.5]]))
LN2 = math.log(2)


@pytest.mark.parametrize("estimator,expected", [
    ("k1", [LN2, -LN2]),                       # -log_ratio
    ("k2", [LN2 ** 2 / 2, LN2 ** 2 / 2]),      # 0.240227
    ("k3", [0.5 - 1 + LN2, 2 - 1 - LN2]),      # ratio - 1 - log_ratio: 0.193147, 0.306853
])
def test_kl_estimators(estimator, expected):
    torch.testing.assert_close(kl_penalty(LOGPROBS, REF, estimator), torch.tensor([expected]))


def test_kl_k3_is_finite_for_far_tokens_and_zero_at_reference():
    assert torch.isfinite(kl_penalty(torch.tensor([[0.0]]), torch.tensor([[-200.0]]), "k3")).all()
    assert torch.isfinite(kl_penalty(torch.tensor([[-200.0]]), torch.tensor([[0.0]]), "k3")).all()
    assert kl_penalty(LOGPROBS, LOGPROBS, "k3").abs().max() == 0
    with pytest.raises(ValueError):
        kl_penalty(LOGPROBS, REF, "k4")


def test_kl_penalized_token_rewards():
    mask = torch.tensor([[1, 1, 0]])
    logprobs = torch.log(torch.tensor([[0.5, 0.25, 0.9]]))
    ref = torch.log(torch.tensor([[0.25, 0.5, 0.1]]))
    # outcome 1 on the last unmasked token, minus 0.1 * k1 = 0.1 * [ln2, -ln2]; padding stays 0
    rewards = kl_penalized_token_rewards(torch.tensor([1.0]), mask, logprobs, ref, kl_coef=0.1)
    torch.testing.assert_close(rewards, torch.tensor([[-0.1 * LN2, 1 + 0.1 * LN2, 0.0]]))


def test_truncated_is_weights_cap_and_mask():
    old = torch.log(torch.tensor([[0.5, 0.25, 0.5]]))
    gen = torch.log(torch.tensor([[0.25, 0.5, 0.1]]))
    mask = torch.tensor([[1, 1, 0]])
    weights, metrics = truncated_is_weights(old, gen, mask, cap=1.5)
    # exp(old - gen) = [2, 0.5, 5] -> capped at 1.5, masked token 0
    torch.testing.assert_close(weights, torch.tensor([[1.5, 0.5, 0.0]]))
    assert not weights.requires_grad
    assert metrics["is/weight_mean"].item() == pytest.approx(1.25)
    assert metrics["is/capped_frac"].item() == pytest.approx(0.5)
    assert metrics["is/gen_kl"].item() == pytest.approx(0.0, abs=1e-6)  # (-ln2 + ln2) / 2

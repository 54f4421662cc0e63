"""The off-policy corrections of `algorithm.off_policy.correction` against hand-computed values.

Ratios r = pi_old / pi_behaviour are written as logs, so the expected weights read directly:
row 0 has token ratios [1, 4, 0.25, 1.5] (and one padded token), row 1 [0.8, 0.8, 0.8, 0.8].
"""
import math

import pytest
import torch

from qwqrl.algorithms import masked_is_weights, off_policy_weights, ratio_metrics

RATIOS = [[1.0, 4.0, 0.25, 1.5, 9.0], [0.8, 0.8, 0.8, 0.8, 1.0]]
MASK = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 1, 0]], dtype=torch.float)


def logprobs() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.full((2, 5), -2.0)
    return gen + torch.log(torch.tensor(RATIOS)), gen


def test_token_mask_keeps_in_band_ratios_and_zeroes_the_rest():
    old, gen = logprobs()
    weights, metrics = masked_is_weights(old, gen, MASK, low=0.5, high=2.0, level="token")
    # row 0: 4 and 0.25 leave [0.5, 2]; padding is 0 whatever its ratio
    torch.testing.assert_close(weights, torch.tensor([[1.0, 0.0, 0.0, 1.5, 0.0], [0.8, 0.8, 0.8, 0.8, 0.0]]))
    assert metrics["is/masked_frac"].item() == pytest.approx(2 / 8)
    # k1 KL of behaviour vs old: mean of log(1/r) = -(0 + ln4 + ln0.25 + ln1.5 + 4 ln0.8) / 8
    expected_kl = -(math.log(1.5) + 4 * math.log(0.8)) / 8
    assert metrics["is/gen_kl"].item() == pytest.approx(expected_kl, abs=1e-6)


def test_sequence_mask_uses_each_sequence_geometric_mean():
    old, gen = logprobs()
    # row 0: (1 * 4 * 0.25 * 1.5) ** (1/4) = 1.5 ** 0.25 = 1.1067 -> kept, every token at 1.1067
    # row 1: 0.8 -> outside [0.9, 2] -> the whole sequence is masked
    weights, metrics = masked_is_weights(old, gen, MASK, low=0.9, high=2.0, level="sequence")
    g = 1.5 ** 0.25
    torch.testing.assert_close(weights, torch.tensor([[g, g, g, g, 0.0], [0.0] * 5]))
    assert metrics["is/masked_frac"].item() == pytest.approx(4 / 8)


def test_recipe_choice_dispatches_and_reports_the_ratio_distribution():
    old, gen = logprobs()
    tis, m = off_policy_weights(old, gen, MASK, "tis", cap=2.0, low=0.5, high=2.0)
    torch.testing.assert_close(tis, torch.tensor([[1.0, 2.0, 0.25, 1.5, 0.0], [0.8, 0.8, 0.8, 0.8, 0.0]]))
    assert m["is/capped_frac"].item() == pytest.approx(1 / 8)
    assert m["is/ratio_mean"].item() == pytest.approx((1 + 4 + 0.25 + 1.5 + 4 * 0.8) / 8)
    assert m["is/ratio_min"].item() == pytest.approx(0.25)
    assert m["is/ratio_max"].item() == pytest.approx(4.0)  # padding's 9 is not counted
    token, m = off_policy_weights(old, gen, MASK, "token_mask", cap=2.0, low=0.5, high=2.0)
    assert token[0, 1] == 0 and m["is/masked_frac"].item() == pytest.approx(2 / 8)
    assert off_policy_weights(old, gen, MASK, "none", cap=2.0, low=0.5, high=2.0) == (None, {})
    assert off_policy_weights(old, gen, MASK, "tis", cap=None, low=0.5, high=2.0) == (None, {})
    with pytest.raises(ValueError, match="unknown off-policy correction"):
        off_policy_weights(old, gen, MASK, "icepop", cap=2.0, low=0.5, high=2.0)


def test_ratio_metrics_without_tokens_are_neutral():
    old, gen = logprobs()
    assert {k: v.item() for k, v in ratio_metrics(old, gen, torch.zeros(2, 5)).items()} == \
        {"is/ratio_mean": 1.0, "is/ratio_min": 1.0, "is/ratio_max": 1.0}


def test_band_must_be_ordered():
    from pydantic import ValidationError

    from qwqrl.config import OffPolicyConfig

    with pytest.raises(ValidationError, match="mask_low"):
        OffPolicyConfig(mask_low=2.0, mask_high=1.0)

import math

import pytest
import torch

from qwqrl.algorithms import gae_advantages, grpo_advantages, outcome_token_rewards, rloo_advantages

NAN = math.nan


def close(actual, expected, atol=1e-5):
    torch.testing.assert_close(actual, torch.tensor(expected, dtype=actual.dtype), atol=atol, rtol=0)


def test_grpo_group_std():
    # mean 0.5, unbiased std sqrt(4 * 0.25 / 3) = 0.57735 -> +-0.5 / 0.57735
    close(grpo_advantages(torch.tensor([1.0, 0, 0, 1]), group_size=4), [0.866025, -0.866025, -0.866025, 0.866025])


def test_grpo_two_groups_group_batch_none():
    rewards = torch.tensor([1.0, 0, 0, 1, 1, 1, 1, 0])
    # group 2: mean 0.75, centered [.25, .25, .25, -.75], unbiased std sqrt(0.75 / 3) = 0.5
    close(grpo_advantages(rewards, 4, "group"), [0.866025, -0.866025, -0.866025, 0.866025, 0.5, 0.5, 0.5, -1.5])
    # batch: std of all 8 rewards (mean .625): sqrt((5 * .375^2 + 3 * .625^2) / 7) = 0.517549
    close(grpo_advantages(rewards, 4, "batch"),
          [0.966092, -0.966092, -0.966092, 0.966092, 0.483046, 0.483046, 0.483046, -1.449138])
    close(grpo_advantages(rewards, 4, "none"), [0.5, -0.5, -0.5, 0.5, 0.25, 0.25, 0.25, -0.75])


@pytest.mark.parametrize("scale", ["group", "batch", "none"])
def test_grpo_zero_variance_group_is_zero(scale):
    adv = grpo_advantages(torch.tensor([1.0, 1, 1, 1, 0, 0, 1, 1]), 4, scale)
    close(adv[:4], [0.0, 0, 0, 0])
    assert adv[4:].abs().sum() > 0


def test_grpo_masked_sample_excluded():
    rewards = torch.tensor([1.0, NAN, 0, 1])
    # valid [1, 0, 1]: mean 2/3, centered [1/3, -2/3, 1/3], std sqrt((1/9 + 4/9 + 1/9) / 2) = 0.57735
    close(grpo_advantages(rewards, 4, "none"), [1 / 3, 0, -2 / 3, 1 / 3])
    close(grpo_advantages(rewards, 4, "group"), [0.577350, 0, -1.154701, 0.577350])
    # the explicit valid mask does the same as NaN
    valid = torch.tensor([True, False, True, True])
    close(grpo_advantages(torch.tensor([1.0, 5.0, 0, 1]), 4, "group", valid=valid), [0.577350, 0, -1.154701, 0.577350])


def test_grpo_rejects_ragged_batch():
    with pytest.raises(ValueError):
        grpo_advantages(torch.zeros(5), 4)


def test_rloo_leave_one_out():
    # r_0 = 1, baseline mean(0, 0, 1) = 1/3; r_1 = 0, baseline mean(1, 0, 1) = 2/3
    close(rloo_advantages(torch.tensor([1.0, 0, 0, 1]), 4), [2 / 3, -2 / 3, -2 / 3, 2 / 3])
    close(rloo_advantages(torch.tensor([1.0, 1, 1, 1]), 4), [0.0, 0, 0, 0])


def test_rloo_masked_samples():
    # valid [1, _, 0, 1]: baselines mean(0, 1) = .5, -, mean(1, 1) = 1, mean(1, 0) = .5
    close(rloo_advantages(torch.tensor([1.0, NAN, 0, 1]), 4), [0.5, 0, -1, 0.5])
    # a lone valid sample has no baseline
    close(rloo_advantages(torch.tensor([NAN, 1.0, NAN, NAN]), 4), [0.0, 0, 0, 0])


def test_outcome_token_rewards_on_last_token():
    mask = torch.tensor([[1, 1, 0], [1, 1, 1], [0, 0, 0]])
    close(outcome_token_rewards(torch.tensor([1.0, 2.0, 3.0]), mask), [[0, 1, 0], [0, 0, 2], [0, 0, 0]])


def test_gae_gamma1_lam1_is_reward_to_go_minus_values():
    rewards = torch.tensor([[0.0, 0, 1], [0, 1, 0]])
    values = torch.tensor([[0.5, 0.6, 0.7], [0.2, 0.4, 9.0]])
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    adv, ret = gae_advantages(rewards, values, mask, gamma=1.0, lam=1.0)
    close(adv, [[0.5, 0.4, 0.3], [0.8, 0.6, 0]])
    close(ret, [[1.0, 1, 1], [1, 1, 0]])


def test_gae_gamma09_lam095_by_hand():
    # t=2: d = 1 - .7 = .3;            A2 = .3
    # t=1: d = .9 * .7 - .6 = .03;     A1 = .03 + .9 * .95 * .3 = .2865
    # t=0: d = .9 * .6 - .5 = .04;     A0 = .04 + .855 * .2865 = .2849575
    adv, ret = gae_advantages(torch.tensor([[0.0, 0, 1]]), torch.tensor([[0.5, 0.6, 0.7]]),
                              torch.ones(1, 3), gamma=0.9, lam=0.95)
    close(adv, [[0.2849575, 0.2865, 0.3]])
    close(ret, [[0.7849575, 0.8865, 1.0]])


def test_gae_skips_masked_holes():
    # a hole (e.g. tool output) with a garbage value behaves as if the token were not there
    holed, _ = gae_advantages(torch.tensor([[0.0, 5.0, 1]]), torch.tensor([[0.5, NAN, 0.7]]),
                              torch.tensor([[1, 0, 1]]), gamma=0.9, lam=0.95)
    compact, _ = gae_advantages(torch.tensor([[0.0, 1]]), torch.tensor([[0.5, 0.7]]),
                                torch.ones(1, 2), gamma=0.9, lam=0.95)
    close(holed, [[compact[0, 0].item(), 0.0, compact[0, 1].item()]])

import math

import torch

from qwqrl.algorithms import (DynamicSamplingDecision, clipped_policy_loss, dynamic_sampling, grpo_advantages,
                              loss_mask, rewards_tensor)
from qwqrl.rollouts import informative_groups

NAN = math.nan


def test_rewards_tensor_none_is_nan():
    r = rewards_tensor([1.0, None, 0])
    assert r.dtype == torch.float32 and r[0] == 1 and math.isnan(r[1]) and r[2] == 0


def test_informative_groups_are_what_dynamic_sampling_keeps_from_a_reward_tensor():
    rewards = torch.tensor([1.0, 0, 0, 1,       # spread: keep
                            1, 1, 1, 1,         # all equal: drop
                            1, NAN, NAN, NAN,   # one valid reward: drop
                            0, NAN, 1, 0])      # spread among the valid ones: keep
    assert informative_groups(rewards, 4) == [0, 3]


def test_dynamic_sampling():
    groups = [[1, 1], [0, 1], [None, 1], [0, 0], [1, 0], [0.5, 0.0]]
    assert dynamic_sampling(groups, target_groups=2) == DynamicSamplingDecision(keep=[1, 4], missing=0)
    decision = dynamic_sampling(groups, target_groups=5)
    assert decision.keep == [1, 4, 5] and decision.missing == 2


def test_loss_mask_zeroes_truncated_and_masked_samples():
    completion_mask = torch.tensor([[1, 1, 0], [1, 1, 1], [1, 0, 0], [1, 1, 1]])
    valid = torch.tensor([True, True, False, True])
    truncated = torch.tensor([False, True, False, False])
    expected = [[1.0, 1, 0], [0, 0, 0], [0, 0, 0], [1, 1, 1]]
    assert loss_mask(completion_mask, valid, truncated).tolist() == expected
    assert loss_mask(completion_mask).tolist() == completion_mask.float().tolist()


def test_masked_sample_end_to_end_gets_no_gradient():
    # group of 4, sample 1 has reward None: advantage 0 and no gradient, others as if G = 3
    rewards = rewards_tensor([1.0, None, 0.0, 1.0])
    valid = ~torch.isnan(rewards)
    adv = grpo_advantages(rewards, 4)
    assert adv[1] == 0
    torch.testing.assert_close(adv[[0, 2, 3]], grpo_advantages(torch.tensor([1.0, 0, 1]), 3))
    logprobs = torch.zeros(4, 2, requires_grad=True)
    loss, _ = clipped_policy_loss(logprobs, torch.zeros(4, 2), adv, loss_mask(torch.ones(4, 2), valid))
    loss.backward()
    assert logprobs.grad[1].abs().sum() == 0 and logprobs.grad[0].abs().sum() > 0

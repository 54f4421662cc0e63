import math

import pytest
import torch

from qwqrl.algorithms import aggregate_loss, clipped_policy_loss, selective_log_softmax

# eps_low = 0.2, eps_high = 0.28 (DAPO clip-higher): the trust region is [0.8, 1.28]
RATIOS = [1.1, 1.5, 0.5, 0.5, 1.5, 4.0]
ADVANTAGES = [1.0, 1.0, 1.0, -1.0, -1.0, -1.0]
# -min(r A, clip(r) A):  inside | clipped high | below region, A > 0 unclipped | clipped low |
#                        above region, A < 0 unclipped | far above, A < 0 (dual clip -> 3)
EXPECTED_TOKEN_LOSS = [-1.1, -1.28, -0.5, 0.8, 1.5, 4.0]


def loss_inputs():
    logprobs = torch.log(torch.tensor([RATIOS])).requires_grad_()
    return logprobs, torch.zeros(1, 6), torch.tensor([ADVANTAGES]), torch.ones(1, 6)


def test_clip_higher_each_region():
    logprobs, old, adv, mask = loss_inputs()
    loss, metrics = clipped_policy_loss(logprobs, old, adv, mask, eps_low=0.2, eps_high=0.28)
    assert loss.item() == pytest.approx(sum(EXPECTED_TOKEN_LOSS) / 6, abs=1e-6)  # 0.57
    assert metrics["clip_ratio/low_mean"].item() == pytest.approx(1 / 6)
    assert metrics["clip_ratio/high_mean"].item() == pytest.approx(1 / 6)
    assert metrics["clip_ratio/region_mean"].item() == pytest.approx(2 / 6)
    assert "clip_ratio/dual_mean" not in metrics
    assert not any(v.requires_grad for v in metrics.values())
    loss.backward()
    # d/dlogp of -r A is -r A; clipped tokens get no gradient
    expected_grad = [-r * a / 6 for r, a in zip(RATIOS, ADVANTAGES)]
    expected_grad[1] = expected_grad[3] = 0.0
    torch.testing.assert_close(logprobs.grad, torch.tensor([expected_grad]))


def test_dual_clip_bounds_negative_advantage_loss():
    logprobs, old, adv, mask = loss_inputs()
    loss, metrics = clipped_policy_loss(logprobs, old, adv, mask, eps_low=0.2, eps_high=0.28, clip_ratio_c=3.0)
    assert loss.item() == pytest.approx((sum(EXPECTED_TOKEN_LOSS) - 4.0 + 3.0) / 6, abs=1e-6)  # 0.403333
    assert metrics["clip_ratio/dual_mean"].item() == pytest.approx(1 / 6)
    loss.backward()
    assert logprobs.grad[0, 5].item() == 0.0 and logprobs.grad[0, 4].item() != 0.0
    with pytest.raises(ValueError):
        clipped_policy_loss(logprobs, old, adv, mask, clip_ratio_c=1.0)


def test_sequence_advantages_broadcast_and_metrics():
    logprobs = torch.log(torch.tensor([[1.1, 1.5], [0.5, 0.5]]))
    loss, metrics = clipped_policy_loss(logprobs, torch.zeros(2, 2), torch.tensor([1.0, -1.0]), torch.ones(2, 2))
    # tokens: -1.1, -1.2 (clipped at 1 + 0.2), 0.8, 0.8
    assert loss.item() == pytest.approx((-1.1 - 1.2 + 0.8 + 0.8) / 4)
    assert metrics["ratio_mean"].item() == pytest.approx(0.9)
    # approx_kl = mean(r - 1 - log r)
    expected_kl = sum(r - 1 - math.log(r) for r in [1.1, 1.5, 0.5, 0.5]) / 4
    assert metrics["approx_kl"].item() == pytest.approx(expected_kl, rel=1e-5)


def test_is_weights_and_kl_term():
    logprobs = torch.log(torch.tensor([[0.5, 0.25]]))
    ref = torch.log(torch.tensor([[0.25, 0.5]]))
    kwargs = dict(ref_logprobs=ref, kl_coef=0.1, is_weights=torch.tensor([[2.0, 0.5]]))
    # ratio 1, A = 1: token losses -1 * w = [-2, -0.5]; k3 = [0.193147, 0.306853]
    loss, metrics = clipped_policy_loss(logprobs, logprobs, torch.ones(1), torch.ones(1, 2), **kwargs)
    assert metrics["loss/policy"].item() == pytest.approx(-1.25)
    assert metrics["kl"].item() == pytest.approx(0.25, abs=1e-6)
    assert loss.item() == pytest.approx(-1.25 + 0.1 * 0.25, abs=1e-6)
    with pytest.raises(ValueError):
        clipped_policy_loss(logprobs, logprobs, torch.ones(1), torch.ones(1, 2), kl_coef=0.1)


def test_masked_tokens_and_samples_do_not_contribute():
    logprobs = torch.zeros(2, 3, requires_grad=True)
    mask = torch.tensor([[1.0, 1, 0], [0, 0, 0]])  # row 2: a masked sample
    loss, _ = clipped_policy_loss(logprobs, torch.zeros(2, 3), torch.tensor([1.0, 5.0]), mask)
    loss.backward()
    assert loss.item() == pytest.approx(-1.0)
    assert logprobs.grad[0, 2] == 0 and logprobs.grad[1].abs().sum() == 0


# aggregation on a ragged mask; the third sequence is fully masked
PER_TOKEN = torch.tensor([[1.0, 2, 3, 4], [5, 6, 100, 100], [7, 7, 7, 7]])
RAGGED = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [0, 0, 0, 0]])


@pytest.mark.parametrize("mode,max_len,expected", [
    ("token-mean", None, 21 / 6),
    ("seq-mean-token-sum", None, (10 + 11) / 2),
    ("seq-mean-token-mean", None, (2.5 + 5.5) / 2),
    ("seq-mean-token-sum-norm", None, 21 / (3 * 4)),
    ("seq-mean-token-sum-norm", 8, 21 / (3 * 8)),
])
def test_aggregation_modes(mode, max_len, expected):
    assert aggregate_loss(PER_TOKEN, RAGGED, mode, max_len).item() == pytest.approx(expected)


def test_aggregation_unknown_mode():
    with pytest.raises(ValueError):
        aggregate_loss(PER_TOKEN, RAGGED, "seq-sum")


def _train(loss_fn, steps=20):
    """Adam on one context's logits over V=3 tokens, shared by two one-token sequences that sampled
    tokens 0 and 1; loss_fn(logprobs (2, 1)) -> loss. Returns the final probabilities (3,) and losses."""
    logits = torch.nn.Parameter(torch.zeros(3))
    opt = torch.optim.Adam([logits], lr=0.05)
    ids = torch.tensor([[0], [1]])
    losses = []
    for _ in range(steps):
        loss = loss_fn(selective_log_softmax(logits.expand(2, 1, 3), ids))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return logits.detach().softmax(-1), losses


@pytest.mark.parametrize("agg", ["token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm"])
def test_policy_loss_moves_probability_to_positive_advantage(agg):
    # sequence 0 sampled token 0 with A = +1, sequence 1 sampled token 1 with A = -1
    old = torch.full((2, 1), math.log(1 / 3))
    adv = torch.tensor([1.0, -1.0])

    def loss_fn(logprobs):
        return clipped_policy_loss(logprobs, old, adv, torch.ones(2, 1), eps_high=0.28, agg=agg, max_len=4)[0]

    probs, losses = _train(loss_fn)
    assert losses[-1] < losses[0]
    assert probs[0] > 0.4 and probs[1] < 0.3  # from 1/3 each


def test_kl_term_pulls_policy_to_reference():
    ref = torch.log(torch.tensor([[0.7], [0.2]]))  # reference probs of the two sampled tokens

    def loss_fn(logprobs):
        return clipped_policy_loss(logprobs, logprobs.detach(), torch.zeros(2), torch.ones(2, 1),
                                   ref_logprobs=ref, kl_coef=1.0)[0]

    probs, losses = _train(loss_fn, steps=40)
    assert losses[-1] < 0.2 * losses[0]
    torch.testing.assert_close(probs[:2], torch.tensor([0.7, 0.2]), atol=0.03, rtol=0)

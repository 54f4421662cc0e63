import pytest
import torch

from qwqrl.algorithms import clipped_value_loss

# token 0: V moves .5 -> 1.0 toward R = 1: clipped V = .7, (.7 - 1)^2 = .09 > 0 (clipped term wins)
# token 1: V moves 1.5 -> 2.0 toward R = 3: clipped V = 1.7, (1.7 - 3)^2 = 1.69 > 1 (clipped wins)
# token 2: V moves 1.0 -> 1.1 inside the clip range: (1.1 - 2)^2 = .81
VALUES = torch.tensor([[1.0, 2.0, 1.1, 50.0]])
OLD = torch.tensor([[0.5, 1.5, 1.0, 0.0]])
RETURNS = torch.tensor([[1.0, 3.0, 2.0, 0.0]])
MASK = torch.tensor([[1, 1, 1, 0]])


def test_clipped_value_loss_by_hand():
    loss, metrics = clipped_value_loss(VALUES, OLD, RETURNS, MASK, clip_range=0.2)
    assert loss.item() == pytest.approx(0.5 * (0.09 + 1.69 + 0.81) / 3)
    assert metrics["vf/clipfrac"].item() == pytest.approx(2 / 3)


def test_unclipped_value_loss():
    loss, metrics = clipped_value_loss(VALUES, OLD, RETURNS, MASK, clip_range=None)
    assert loss.item() == pytest.approx(0.5 * (0.0 + 1.0 + 0.81) / 3)
    assert metrics["vf/clipfrac"].item() == 0.0


def test_value_loss_fits_returns():
    returns = torch.tensor([[1.0, 0.5, 0.0], [0.2, 0.0, 0.0]])
    mask = torch.tensor([[1, 1, 1], [1, 0, 0]])
    values = torch.nn.Parameter(torch.zeros(2, 3))
    opt = torch.optim.Adam([values], lr=0.05)
    losses = []
    for _ in range(30):
        old = values.detach().clone()  # each step is a fresh "rollout", so clipping bounds the move
        loss, metrics = clipped_value_loss(values, old, returns, mask, clip_range=0.2)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.05 * losses[0]
    assert metrics["vf/explained_var"].item() > 0.9

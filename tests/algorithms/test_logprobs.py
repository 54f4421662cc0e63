import pytest
import torch

from qwqrl.algorithms import entropy_from_logits, masked_mean, masked_var, selective_log_softmax


def test_selective_log_softmax_matches_naive():
    torch.manual_seed(0)
    logits = torch.randn(3, 5, 11)
    ids = torch.randint(0, 11, (3, 5))
    naive = logits.log_softmax(-1).gather(-1, ids.unsqueeze(-1)).squeeze(-1)
    torch.testing.assert_close(selective_log_softmax(logits, ids), naive)
    naive_t = (logits / 0.7).log_softmax(-1).gather(-1, ids.unsqueeze(-1)).squeeze(-1)
    torch.testing.assert_close(selective_log_softmax(logits, ids, temperature=0.7), naive_t)
    out_bf16 = selective_log_softmax(logits.bfloat16(), ids)
    assert out_bf16.dtype == torch.bfloat16
    torch.testing.assert_close(out_bf16.float(), naive, atol=0.05, rtol=0.02)
    with pytest.raises(ValueError):
        selective_log_softmax(logits, ids, temperature=0.0)


def test_selective_log_softmax_gradient():
    logits = torch.zeros(1, 1, 3, requires_grad=True)
    selective_log_softmax(logits, torch.tensor([[2]])).sum().backward()
    # d log p_2 / d z = onehot(2) - softmax = [-1/3, -1/3, 2/3]
    torch.testing.assert_close(logits.grad, torch.tensor([[[-1 / 3, -1 / 3, 2 / 3]]]))


def test_entropy_from_logits():
    uniform = torch.zeros(2, 3, 4)
    torch.testing.assert_close(entropy_from_logits(uniform), torch.full((2, 3), torch.log(torch.tensor(4.0)).item()))
    torch.manual_seed(0)
    logits = torch.randn(2, 7, 9)
    p = logits.softmax(-1)
    naive = -(p * p.log()).sum(-1)
    torch.testing.assert_close(entropy_from_logits(logits, chunk_size=3), naive)
    peaked = torch.tensor([[0.0, -1e4, -1e4]])
    assert entropy_from_logits(peaked).item() == pytest.approx(0.0, abs=1e-6)


def test_masked_mean_and_var():
    values = torch.tensor([[1.0, 2, 3], [4, 99, 99]])
    mask = torch.tensor([[1, 1, 1], [1, 0, 0]])
    assert masked_mean(values, mask).item() == pytest.approx(2.5)
    torch.testing.assert_close(masked_mean(values, mask, dim=1), torch.tensor([2.0, 4.0]))
    assert masked_mean(values, torch.zeros_like(mask)).item() == 0.0
    # [1, 2, 3, 4]: sum of squares 5 -> unbiased 5/3, biased 5/4
    assert masked_var(values, mask).item() == pytest.approx(5 / 3)
    assert masked_var(values, mask, unbiased=False).item() == pytest.approx(5 / 4)

"""Masked reductions over padded (B, T) token tensors.

Every RL loss in this package averages over the tokens a policy actually generated, so padding
(and any token a loss mask switches off) must not leak into means or variances. `mask` is a bool
or 0/1 float tensor broadcastable to `values`; masked-out entries may hold anything finite.
"""

import torch


def masked_sum(values: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Sum of `values` where `mask` is set. values, mask: (...) -> scalar, or (...) reduced over `dim`."""
    mask = mask.to(values.dtype)
    return (values * mask).sum() if dim is None else (values * mask).sum(dim)


def masked_mean(values: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Mean of `values` where `mask` is set; 0 where nothing is set.

    values, mask: (...). Returns a scalar when `dim` is None, else (...) reduced over `dim`.
    """
    count = masked_sum(torch.ones_like(values), mask, dim)
    return masked_sum(values, mask, dim) / count.clamp(min=1.0)


def masked_var(values: torch.Tensor, mask: torch.Tensor, unbiased: bool = True) -> torch.Tensor:
    """Variance of the masked entries of `values` (all dims). values, mask: (...) -> scalar.

    With `unbiased` the sum of squares is divided by (n - 1), as torch.var does; with one or no
    entry the variance is 0.
    """
    mean = masked_mean(values, mask)
    count = masked_sum(torch.ones_like(values), mask)
    sum_sq = masked_sum((values - mean) ** 2, mask)
    return sum_sq / (count - 1.0 if unbiased else count).clamp(min=1.0)

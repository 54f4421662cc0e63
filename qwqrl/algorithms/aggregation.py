"""Reducing a (B, T) per-token loss to the scalar that is back-propagated.

The choice changes which tokens weigh most (DAPO §3.3; Dr.GRPO):
  token-mean               sum(l * m) / sum(m): every token equal (DAPO, verl's default).
  seq-mean-token-sum       mean over sequences of sum(l * m): long sequences weigh more.
  seq-mean-token-mean      mean over sequences of each sequence's token mean (original GRPO):
                           a token of a short answer weighs more than one of a long answer.
  seq-mean-token-sum-norm  sum(l * m) / (B * max_len), max_len a constant such as the generation
                           limit (Dr.GRPO): no length bias and no dependence on the batch's tokens.
The seq-mean modes average over sequences with at least one unmasked token. With gradient
accumulation, `token-mean` over micro-batches is not the token-mean of the whole batch; scale
each micro-batch loss by its share of the batch's tokens if that matters.
"""

from typing import Literal

import torch

from qwqrl.algorithms.masked import masked_mean

LossAgg = Literal["token-mean", "seq-mean-token-sum", "seq-mean-token-mean", "seq-mean-token-sum-norm"]


def aggregate_loss(per_token_loss: torch.Tensor, mask: torch.Tensor, mode: LossAgg = "token-mean",
                   max_len: int | None = None) -> torch.Tensor:
    """Scalar loss from per_token_loss (B, T) and mask (B, T). See the module docstring for modes.

    `max_len` is only used by "seq-mean-token-sum-norm" and defaults to T (pass the generation
    limit so the normaliser does not depend on the batch's padding).
    """
    mask = mask.to(per_token_loss.dtype)
    if mode == "token-mean":
        return masked_mean(per_token_loss, mask)
    if mode == "seq-mean-token-sum-norm":
        norm = per_token_loss.shape[0] * (max_len if max_len is not None else per_token_loss.shape[1])
        return (per_token_loss * mask).sum() / norm
    seq_loss = (per_token_loss * mask).sum(-1)
    if mode == "seq-mean-token-mean":
        seq_loss = seq_loss / mask.sum(-1).clamp(min=1.0)
    elif mode != "seq-mean-token-sum":
        raise ValueError(f"unknown loss aggregation {mode!r}")
    return masked_mean(seq_loss, mask.sum(-1) > 0)

"""`qwqrl_packed`: sdpa that attends within each sequence of a packed row, where no varlen kernel
exists (CPU), registered as a named attention implementation of transformers.

`sequences.pack` puts a micro-batch's sequences in one row with position ids restarting at 0.
flash-attention reads that as varlen and attends within each sequence. transformers' sdpa path
instead builds a dense (N, N) block-diagonal mask and attends over the whole row: for a row of
many short sequences that is far more work than the padded layout (measured 0.6x the padded
throughput on CPU). `qwqrl_packed` runs causal sdpa per sequence for such a row (the mask is then
redundant) and is transformers' own sdpa, mask included, for every other call (padded batches,
generation with a KV cache, one sequence per row, sliding-window layers). Models select it by
name (`models.attention_implementation` turns the recipe's sdpa or unset into it), so nothing
outside them changes what "sdpa" means.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

NAME = "qwqrl_packed"


def packed_sdpa_attention(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor,
                          value: torch.Tensor, attention_mask: torch.Tensor | None,
                          dropout: float = 0.0, scaling: float | None = None,
                          position_ids: torch.Tensor | None = None, **kwargs) -> tuple[torch.Tensor, None]:
    """query (1, heads, N, d), key/value (1, kv_heads, N, d) -> ((1, N, heads, d), None)."""
    starts = None if kwargs.get("sliding_window") else _sequence_starts(query, key, position_ids)
    if starts is None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout,
                                      scaling=scaling, position_ids=position_ids, **kwargs)
    bounds = [*starts, query.shape[2]]
    out = torch.cat([F.scaled_dot_product_attention(
        query[:, :, s:e], key[:, :, s:e], value[:, :, s:e], dropout_p=dropout, scale=scaling,
        is_causal=True, enable_gqa=True) for s, e in zip(bounds, bounds[1:])], dim=2)
    return out.transpose(1, 2).contiguous(), None


def _sequence_starts(query: torch.Tensor, key: torch.Tensor,
                     position_ids: torch.Tensor | None) -> list[int] | None:
    """Where each sequence of a packed single row starts; None when the call is not one."""
    if (position_ids is None or query.shape[0] != 1 or position_ids.shape[0] != 1
            or query.shape[2] != key.shape[2] or position_ids.shape[-1] != query.shape[2]):
        return None
    starts = (position_ids[0] == 0).nonzero().flatten().tolist()
    if len(starts) < 2 or starts[0] != 0:
        return None
    return starts


AttentionInterface.register(NAME, packed_sdpa_attention)
AttentionMaskInterface.register(NAME, sdpa_mask)  # the masks sdpa gets, for the calls it serves

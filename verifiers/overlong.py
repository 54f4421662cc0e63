"""Soft overlong penalty (DAPO, arXiv:2503.14476, section 3.4): a shaping term in [-1, 0].

A completion cut at the length limit is usually unfinished, and a hard 0 for it is noisy; DAPO
instead penalises length smoothly within a buffer before the limit:

    penalty(L) = 0                              if L <= max_len - buffer
               = (max_len - buffer - L) / buffer if max_len - buffer < L <= max_len
               = -1                             if L > max_len

L is the completion's length in tokens, taken from, in order: TRL's `completion_ids` (exact),
a `completion_length` field or dataset column (tokens), or a tokenizer-free proxy,
`ceil(len(text) / chars_per_token)`. The proxy's default of 4 characters per token suits
English text under Qwen's BPE; set `chars_per_token=1` for byte-level tokenizers such as
`qwqrl.tiny`'s. The score is negative by design: weight it into the reward, do not use it alone.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from qwqrl.verifiers.base import Verdict, completion_text
from qwqrl.verifiers.reward_fn import reward_function

DEFAULT_MAX_LEN = 20480  # DAPO: 16,384 expected + 4,096 buffer
DEFAULT_BUFFER = 4096


def soft_overlong_penalty(length: int, max_len: int, buffer: int) -> float:
    if not 0 < buffer <= max_len:
        raise ValueError(f"need 0 < buffer <= max_len, got buffer={buffer}, max_len={max_len}")
    start = max_len - buffer
    if length <= start:
        return 0.0
    if length > max_len:
        return -1.0
    return (start - length) / buffer


def completion_tokens(record: Mapping[str, Any], chars_per_token: float) -> tuple[int, str]:
    """The completion's length in tokens and where it came from (ids, field or chars)."""
    if record.get("completion_ids") is not None:
        return len(record["completion_ids"]), "ids"
    if record.get("completion_length") is not None:
        return int(record["completion_length"]), "field"
    text = completion_text(record["completion"])
    return math.ceil(len(text) / chars_per_token), "chars"


def verify(record: Mapping[str, Any], *, max_len: int = DEFAULT_MAX_LEN,
           buffer: int = DEFAULT_BUFFER, chars_per_token: float = 4.0) -> Verdict:
    if all(record.get(k) is None for k in ("completion_ids", "completion_length", "completion")):
        return Verdict(None, {"verifier": "overlong"}, "record has no completion or length")
    try:
        length, source = completion_tokens(record, chars_per_token)
    except (TypeError, ValueError) as e:
        return Verdict(None, {"verifier": "overlong"}, str(e))
    detail = {"verifier": "overlong", "length": length, "length_from": source}
    return Verdict(soft_overlong_penalty(length, max_len, buffer), detail)


def verify_batch(records: Sequence[Mapping[str, Any]], *, max_length: int | None = None,
                 buffer: int = DEFAULT_BUFFER, chars_per_token: float = 4.0,
                 max_new_tokens: int | None = None) -> list[Verdict]:
    """The registry's `overlong` term: the limit is `max_length`, else the stage's
    `max_new_tokens` (where generation cuts), else DAPO's 20,480; the buffer is at most the limit."""
    limit = max_length or max_new_tokens or DEFAULT_MAX_LEN
    return [verify(r, max_len=limit, buffer=min(buffer, limit), chars_per_token=chars_per_token)
            for r in records]


overlong_reward = reward_function(verify_batch, "overlong_reward")

"""Reward functions as a user would write them in their own package, for the custom-reward
tests (recipes and `qwqrl score --reward` name them as `tests.verifiers.custom_rewards:NAME`)."""
from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from qwqrl.verifiers.base import Verdict


def answer_format(records: Sequence[dict[str, Any]], *, pattern: str = r"\S+",
                  think_opened: bool = True) -> list[Verdict]:
    """A batch verifier: 1.0 when the whole completion matches `pattern`, else 0.0; None for a
    record without a completion (masked)."""
    out = []
    for r in records:
        if r.get("completion") is None:
            out.append(Verdict(None, {"verifier": "answer_format"}, "no completion"))
        else:
            matched = re.fullmatch(pattern, r["completion"].strip(), re.DOTALL) is not None
            out.append(Verdict(float(matched), {"verifier": "answer_format",
                                                "think_opened": think_opened}))
    return out


def few_words(completions: list[str], prompts: list[Any], **kwargs: Any) -> list[float | None]:
    """A TRL-style reward function: 1.0 for fewer than `limit` words; None for an empty prompt."""
    limit = kwargs.get("limit", 2)
    return [None if not p else float(len(c.split()) < limit) for c, p in zip(completions, prompts)]


def broken(completions: list[str], **kwargs: Any) -> list[float]:
    """A reward function with a bug."""
    raise ZeroDivisionError("custom reward bug")


def wrong_signature() -> list[float]:
    return []

"""Adapter from a verifier's batch function to TRL's reward-function signature.

TRL calls `fn(prompts=..., completions=..., completion_ids=..., **columns)` where each dataset
column arrives as a list aligned with `completions` (plus a few non-list extras such as
`trainer_state`, ignored here). The adapter rebuilds one record per completion, calls the
verifier's `verify_batch`, and returns the scores; None (could not judge) stays None so TRL
masks the sample, and the reason is logged rather than hidden.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from qwqrl.verifiers.base import Verdict

log = logging.getLogger("qwqrl.verifiers")

RewardFunction = Callable[..., list[float | None]]
BatchVerifier = Callable[..., list[Verdict]]


def records_from_columns(completions: Sequence[Any], columns: dict[str, Any]) -> list[dict]:
    """One record per completion from TRL's aligned column lists (`prompts` becomes `prompt`)."""
    n = len(completions)
    aligned = {("prompt" if k == "prompts" else k): v for k, v in columns.items()
               if isinstance(v, list | tuple) and len(v) == n}
    return [{**{k: v[i] for k, v in aligned.items()}, "completion": completions[i]}
            for i in range(n)]


def reward_function(verify_batch: BatchVerifier, name: str, **options: Any) -> RewardFunction:
    """A TRL reward function named `name` that scores with `verify_batch(records, **options)`."""
    def reward(completions: Sequence[Any], **columns: Any) -> list[float | None]:
        verdicts = verify_batch(records_from_columns(completions, columns), **options)
        for v in verdicts:
            if v.error is not None:
                log.warning("%s could not judge a sample: %s", name, v.error)
        return [v.score for v in verdicts]

    reward.__name__ = reward.__qualname__ = name
    return reward

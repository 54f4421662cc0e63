"""Adapters between a verifier's batch function and TRL's reward-function signature, both ways.

TRL calls `fn(prompts=..., completions=..., completion_ids=..., **columns)` where each dataset
column arrives as a list aligned with `completions` (plus a few non-list extras such as
`trainer_state`, ignored here), and gets one float (or None: could not judge) per completion.
- `reward_function` turns a batch verifier into such a function: it rebuilds one record per
  completion, calls `verify_batch`, and returns the scores; None stays None so TRL masks the
  sample, and the reason is logged rather than hidden.
- `from_trl` goes the other way, so a TRL/open-r1 reward function can be a recipe's reward: the
  records become TRL's column lists, and the floats it returns become verdicts.
"""
from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Mapping, Sequence
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


def columns_from_records(records: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """TRL's keyword arguments for `records`: `prompts`, `completions` and every other field as
    an aligned list (None where a record lacks it)."""
    keys = list(dict.fromkeys(k for r in records for k in r))
    renamed = {"prompt": "prompts", "completion": "completions"}
    return {renamed.get(k, k): [r.get(k) for r in records] for k in keys}


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


def is_trl_style(fn: Callable[..., Any]) -> bool:
    """TRL reward functions take their completions by the keyword `completions`."""
    return "completions" in inspect.signature(fn).parameters


def from_trl(fn: RewardFunction) -> Callable[..., list[float | None]]:
    """A batch function over records for the TRL reward function `fn`: it gets the columns it
    names (all of them when it takes **kwargs) plus the options, and its scores come back as
    they are (None masks the sample)."""
    params = inspect.signature(fn).parameters
    takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())

    def verify_batch(records: Sequence[Mapping[str, Any]], **options: Any) -> list[float | None]:
        columns = columns_from_records(records)
        if not takes_any:
            columns = {k: v for k, v in columns.items() if k in params}
        return list(fn(**columns, **options))

    verify_batch.__name__ = getattr(fn, "__name__", "reward")
    verify_batch.__qualname__ = getattr(fn, "__qualname__", verify_batch.__name__)
    verify_batch.__module__ = getattr(fn, "__module__", __name__)
    return verify_batch

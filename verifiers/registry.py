"""Which verifier judges what: verifier names -> batch functions, and tasks -> verifier names.

The trainer's RewardRouter and `qwqrl score` both go through `verify_batch(name, records,
**options)`. Every verifier takes records (dicts carrying `completion` and the reference fields
of DESIGN.md's record contract) and returns one Verdict per record, in order. Modules are
imported on first use: naming `code` does not import the sandbox client, and `math` starts its
worker processes only when a batch arrives.

`format` and `overlong` are shaping terms that apply to any task; recipes weight them.
"""
from __future__ import annotations

import asyncio
import importlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from qwqrl.verifiers.base import Verdict
from qwqrl.verifiers.reward_fn import RewardFunction, reward_function as _reward_function

BatchVerifier = Callable[..., list[Verdict]]

# name -> "module:function", a `verify_batch(records, **options) -> list[Verdict]`; where the
# module also has `a<function>` (e.g. `averify_batch`), async callers get that one.
VERIFIERS: dict[str, str] = {
    "math": "qwqrl.verifiers.math:verify_batch",
    "code": "qwqrl.verifiers.code:verify_batch",
    "ifeval": "qwqrl.verifiers.registry:ifeval_verify_batch",
    "format": "qwqrl.verifiers.format:verify_batch",
    "overlong": "qwqrl.verifiers.overlong:verify_batch",
    "general": "qwqrl.verifiers.reward_model:verify_batch",
    "tool_call": "qwqrl.verifiers.tool_call:verify_batch",
}

# task (a record's `task` field) -> the verifier that scores its accuracy
TASK_VERIFIERS: dict[str, str] = {
    "math": "math",
    "code": "code",
    "ifeval": "ifeval",
    "general": "general",
    "tool_call": "tool_call",
}


def ifeval_verify_batch(records: Sequence[Mapping[str, Any]], **options: Any) -> list[Verdict]:
    """IFEval judges one record at a time with `verify(record, completion) -> Verdict`."""
    from qwqrl.verifiers.ifeval.verifier import verify

    return [verify(r, r["completion"], **options)
            if r.get("completion") is not None
            else Verdict(None, {"verifier": "ifeval"}, "record has no 'completion'")
            for r in records]


def _resolve(name: str, prefix: str = "") -> Any:
    if name not in VERIFIERS:
        raise KeyError(f"unknown verifier {name!r}; known: {', '.join(sorted(VERIFIERS))}")
    module, _, function = VERIFIERS[name].partition(":")
    return getattr(importlib.import_module(module), prefix + function, None)


def batch_verifier(name: str) -> BatchVerifier:
    """The batch function of verifier `name` (KeyError if there is none)."""
    return _resolve(name)


def verify_batch(name: str, records: Sequence[Mapping[str, Any]], **options: Any) -> list[Verdict]:
    """Judge `records` with verifier `name`: one Verdict per record, in order."""
    return batch_verifier(name)(records, **options)


def averify_batch(name: str, records: Sequence[Mapping[str, Any]],
                  **options: Any) -> Awaitable[list[Verdict]]:
    """`verify_batch` for async callers; a verifier without an async form runs in a thread."""
    native = _resolve(name, prefix="a")
    if native is not None:
        return native(records, **options)
    return asyncio.to_thread(batch_verifier(name), records, **options)


def verifier_for_task(task: str) -> str:
    """The accuracy verifier for a record's `task` (KeyError for an unknown task)."""
    if task not in TASK_VERIFIERS:
        raise KeyError(f"unknown task {task!r}; known: {', '.join(sorted(TASK_VERIFIERS))}")
    return TASK_VERIFIERS[task]


def reward_function(name: str, **options: Any) -> RewardFunction:
    """A TRL reward function `fn(completions, **columns)` for verifier `name` with `options`."""
    return _reward_function(batch_verifier(name), f"{name}_reward", **options)

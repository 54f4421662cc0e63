"""Every reward verifier behind one call: `fn(records, **options) -> list[Verdict]`, by name.

A verifier takes records (dicts carrying `completion` and the reference fields of DESIGN.md's
record contract) and returns one Verdict per record, in order; its verdict policy (IFEval loose
or strict, code all-or-nothing) is one of its options. An entry of `BUILTIN` names its batch
function ("module:function", imported on first use: naming `code` does not import the sandbox
client), the tasks it judges (None: every record, a shaping term such as `format`), and the
pydantic schema of its recipe options (`rewards.<name>: {weight, ...options}`). Adding a built-in
verifier is its module plus one entry here.

A recipe adds its own with `rewards.<name>: {fn: "package.module:function", weight, tasks,
options}` (`CustomReward`): a batch verifier as above, or a TRL reward function
`fn(completions, **columns) -> list[float | None]`, adapted by `load_function`. Both are checked
(importable, right signature, options accepted) when the recipe is validated.

Besides its options a verifier may name run-time context among its keyword parameters
(`CONTEXT`: the chat template's `think_opened`, the sandbox `client`, the live reward-model
`scorer`, the stage's `max_new_tokens`); callers pass what it names (`context_for`).
"""
from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
import math
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from qwqrl.verifiers.base import Verdict
from qwqrl.verifiers.reward_fn import RewardFunction, from_trl, is_trl_style
from qwqrl.verifiers.reward_fn import reward_function as _reward_function

log = logging.getLogger("qwqrl.verifiers")

BatchVerifier = Callable[..., list[Verdict]]
CONTEXT = ("think_opened", "client", "scorer", "max_new_tokens")


# ------------------------------------------------------------------------- recipe option schemas


class Reward(BaseModel):
    """`rewards.<name>`: its weight, plus the verifier's own options (subclasses)."""
    model_config = ConfigDict(extra="forbid")
    weight: float = Field(1.0, description="Multiplies this verifier's score in the reward sum.")

    def call_options(self) -> dict[str, Any]:
        """The keyword arguments the verifier is called with."""
        return self.model_dump(exclude={"weight"})


class MathOptions(Reward):
    timeout_s: float = Field(5.0, gt=0, description="Hard wall-clock limit per record.")


class CodeOptions(Reward):
    urls: list[str] = Field(
        default_factory=list,
        description="Sandbox replicas; empty: $QWQRL_SANDBOX_URL, else a local server.")
    all_or_nothing: bool = Field(
        False, description="Reward 1 only if every test passes, else 0; the sandbox stops at "
                           "the first failing test (stop_on_first_fail).")
    timeout_s: float | None = Field(
        None, gt=0, description="CPU seconds per test case (the sandbox request's limits.time_s) "
                                "for records without their own `limits`; default: the sandbox's "
                                "(2 s). At most the server's --max-time-s (30 s by default).")


class IFEvalOptions(Reward):
    mode: Literal["strict", "loose"] = Field(
        "strict", description="IFEval's strict check, or loose (also accepts the answer without "
                              "its first/last line or markdown emphasis).")


class GeneralOptions(Reward):
    path: str | None = Field(None, description="Sequence-classification reward model to load.")
    url: str | None = Field(None, description="A `qwqrl rm serve` endpoint instead of a local RM.")
    device: str | None = Field(None, description="Device for a local RM (default: the trainer's).")
    batch_size: int = Field(16, gt=0, description="Sequences per RM forward pass.")
    normalize: Literal["none", "zscore", "sigmoid"] = Field(
        "sigmoid", description="Raw logits, z-scored per batch, or squashed into [0, 1].")

    @model_validator(mode="after")
    def _one_place(self) -> GeneralOptions:
        if (self.path is None) == (self.url is None):
            raise ValueError("set exactly one of `path` (a local reward model) or `url` (a server)")
        return self


class OverlongOptions(Reward):
    max_length: int | None = Field(None, gt=0, description="Default: generation.max_new_tokens.")
    buffer: int = Field(256, gt=0, description="DAPO soft overlong buffer, in tokens.")


# ------------------------------------------------------------------------------------ built-ins


@dataclass(frozen=True)
class Verifier:
    fn: str                          # "module:function", a batch verifier
    tasks: tuple[str, ...] | None    # record tasks it judges; None: every record (shaping)
    options: type[Reward] = Reward
    help: str = ""


BUILTIN: dict[str, Verifier] = {
    "math": Verifier("qwqrl.verifiers.math:verify_batch", ("math",), MathOptions,
                     "Math accuracy on the final answer."),
    "code": Verifier("qwqrl.verifiers.code:verify_batch", ("code",), CodeOptions,
                     "Code executed against the record's tests in the sandbox."),
    "ifeval": Verifier("qwqrl.verifiers.ifeval.verifier:verify_batch", ("ifeval",), IFEvalOptions,
                       "Rule-based instruction following."),
    "general": Verifier("qwqrl.verifiers.reward_model:verify_batch", ("general",), GeneralOptions,
                        "A general reward model."),
    "tool_call": Verifier("qwqrl.verifiers.tool_call:verify_batch", ("tool_call",),
                          help="Function calls, BFCL's AST checker rules."),
    "format": Verifier("qwqrl.verifiers.format:verify_batch", None, Reward,
                       "One closed think block, then an answer."),
    "overlong": Verifier("qwqrl.verifiers.overlong:verify_batch", None, OverlongOptions,
                         "Soft penalty near max length (DAPO)."),
}

# task (a record's `task` field) -> the built-in verifier that scores its accuracy
TASK_VERIFIERS: dict[str, str] = {task: name for name, spec in BUILTIN.items()
                                  for task in spec.tasks or ()}


# -------------------------------------------------------------------------- functions by path


def load_function(path: str) -> Callable[..., Any]:
    """The function at "package.module:function", looked up in the installed packages and the
    working directory; ValueError saying what is wrong."""
    module_name, sep, attr = path.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"fn {path!r}: expected 'package.module:function'")
    cwd = str(Path.cwd())
    if cwd not in sys.path and "" not in sys.path:
        sys.path.append(cwd)
    try:
        module = importlib.import_module(module_name)
    except Exception as e:  # noqa: BLE001 -- any failure of the user's module is reported
        detail = str(e) if isinstance(e, ImportError) else f"{type(e).__name__}: {e}"
        raise ValueError(f"fn {path!r}: cannot import {module_name!r}: {detail}") from None
    fn = module
    for part in attr.split("."):
        fn = getattr(fn, part, None)
        if fn is None:
            raise ValueError(f"fn {path!r}: module {module_name!r} has no {attr!r}")
    if not callable(fn):
        raise ValueError(f"fn {path!r}: {attr!r} is not callable")
    return fn


def as_batch_verifier(fn: Callable[..., Any], label: str,
                      options: Mapping[str, Any] | None = None) -> BatchVerifier:
    """`fn` as a batch verifier: itself, or a TRL reward function wrapped by `from_trl`.
    ValueError naming `label` when its signature cannot take records (or completions) and
    `options`."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        raise ValueError(f"{label}: cannot read its signature") from None
    if is_trl_style(fn):
        verify = from_trl(fn)
    else:
        first = next(iter(params.values()), None)
        if first is None or first.kind not in (first.POSITIONAL_ONLY, first.POSITIONAL_OR_KEYWORD):
            raise ValueError(f"{label}: expected a batch verifier fn(records, **options) -> "
                             "list[Verdict] or a TRL reward function fn(completions, **columns) "
                             "-> list[float | None]")
        verify = fn
    takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
    unknown = [k for k in options or {} if k not in params and not takes_any]
    if unknown:
        raise ValueError(f"{label}: options {unknown} are not parameters of the function "
                         f"(it takes {', '.join(params)})")
    return verify


class CustomReward(Reward):
    """`rewards.<name>: {fn, weight, tasks, options}`: a reward function from the user's code."""
    fn: str = Field(description="'package.module:function': a batch verifier "
                                "fn(records, **options) -> list[Verdict], or a TRL reward "
                                "function fn(completions, **columns) -> list[float | None].")
    tasks: list[str] | None = Field(
        None, description="Record tasks it judges (it is then their accuracy reward); "
                          "omitted: every record, as a shaping term beside their verifier.")
    options: dict[str, Any] = Field(
        default_factory=dict, description="Keyword arguments for the function.")

    def call_options(self) -> dict[str, Any]:
        return dict(self.options)

    @model_validator(mode="before")
    @classmethod
    def _has_fn(cls, data: Any) -> Any:
        """A key that is neither a built-in nor has `fn` is a typo: reported as an unknown key
        (the recipe loader then suggests the nearest built-in name)."""
        if isinstance(data, dict) and "fn" not in data:
            raise PydanticCustomError("extra_forbidden", "unknown reward: not built in ({known}) "
                                      "and no `fn` for a custom one", {"known": ", ".join(BUILTIN)})
        return data

    @model_validator(mode="after")
    def _loads(self) -> CustomReward:
        as_batch_verifier(load_function(self.fn), f"fn {self.fn!r}", self.options)
        return self


# ----------------------------------------------------------------------------- calling them


def batch_verifier(name: str) -> BatchVerifier:
    """The batch function of built-in verifier `name` (KeyError if there is none)."""
    return _resolve(name)


def _resolve(name: str, prefix: str = "") -> Any:
    if name not in BUILTIN:
        raise KeyError(f"unknown verifier {name!r}; known: {', '.join(sorted(BUILTIN))}")
    module, _, function = BUILTIN[name].fn.partition(":")
    return getattr(importlib.import_module(module), prefix + function, None)


def context_for(fn: Callable[..., Any], context: Mapping[str, Any]) -> dict[str, Any]:
    """The run-time context values (`CONTEXT`) that `fn` names among its parameters."""
    params = inspect.signature(fn).parameters
    return {k: v for k, v in context.items() if k in CONTEXT and k in params}


def judge(name: str, fn: BatchVerifier, records: Sequence[Mapping[str, Any]],
          **kwargs: Any) -> list[Verdict]:
    """`fn(records, **kwargs)`, never raising: an exception, a wrong count or a score that is
    not a finite number gives every record of the call score None with the reason (logged with
    the function's name), so the trainer masks them instead of reading a silent 0."""
    label = f"{name} ({getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', fn)})"
    try:
        verdicts = [_as_verdict(v, name) for v in fn(records, **kwargs)]
        if len(verdicts) != len(records):
            raise ValueError(f"returned {len(verdicts)} results for {len(records)} records")
    except Exception as e:  # noqa: BLE001 -- a verifier bug masks its samples, never kills the run
        log.error("reward %s failed on %d records: %s: %s", label, len(records),
                  type(e).__name__, e, exc_info=True)
        error = f"{label} raised {type(e).__name__}: {e}"
        return [Verdict(None, {"verifier": name}, error) for _ in records]
    return verdicts


def _as_verdict(value: Any, name: str) -> Verdict:
    """A Verdict, or a plain number / None (what TRL reward functions return) as one."""
    verdict = value if isinstance(value, Verdict) else Verdict(value, {"verifier": name})
    score = verdict.score
    if score is None:
        return verdict if verdict.error else Verdict(None, verdict.detail, f"{name}: no score")
    if isinstance(score, bool) or not isinstance(score, int | float) or not math.isfinite(score):
        raise TypeError(f"a score must be a finite number or None, got {score!r}")
    return verdict


def verify_batch(name: str, records: Sequence[Mapping[str, Any]], **options: Any) -> list[Verdict]:
    """Judge `records` with built-in verifier `name`: one Verdict per record, in order."""
    return batch_verifier(name)(records, **options)


def averify_batch(name: str, records: Sequence[Mapping[str, Any]],
                  **options: Any) -> Awaitable[list[Verdict]]:
    """`verify_batch` for async callers; a verifier without an async form runs in a thread."""
    native = _resolve(name, prefix="a")
    if native is not None:
        return native(records, **options)
    return asyncio.to_thread(batch_verifier(name), records, **options)


def verifier_for_task(task: str) -> str:
    """The built-in accuracy verifier for a record's `task` (KeyError for an unknown task)."""
    if task not in TASK_VERIFIERS:
        raise KeyError(f"unknown task {task!r}; known: {', '.join(sorted(TASK_VERIFIERS))}")
    return TASK_VERIFIERS[task]


def reward_function(name: str, **options: Any) -> RewardFunction:
    """A TRL reward function `fn(completions, **columns)` for verifier `name` with `options`."""
    return _reward_function(batch_verifier(name), f"{name}_reward", **options)

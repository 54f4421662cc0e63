"""Every recipe field is read by runtime code: a field no code reads promises what never happens.

A static scan, precise enough to catch a forgotten field: for every field of every model in the
recipe schema (the tree `qwqrl recipe check --explain` walks), some module in qwqrl/, verifiers/
or sandbox/ other than the schema itself must access an attribute of that name (`cfg.name` or
`getattr(cfg, "name")`). A wholesale `model_dump()` does not count: logging a config is not
honouring it. Fields added later are walked the same way, so they are checked too. The scan is
by name, so a name two models share (`timeout_s`, `weight`) passes once either is read.

Built-in rewards are read through the verifier registry instead of by attribute: the router
turns every enabled `rewards.<name>` into a term, and the entry's options become keyword
arguments of the verifier's batch function. So `rewards.<builtin>` counts as read when the
router builds its term, and each of its options when the verifier's function takes it.
"""
from __future__ import annotations

import ast
from pathlib import Path

from pydantic import BaseModel

import inspect

from qwqrl.config import Recipe, RewardsConfig
from qwqrl.recipe import _models_in
from qwqrl.rewards import RewardRouter
from qwqrl.verifiers.registry import BUILTIN, batch_verifier

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("qwqrl", "verifiers", "sandbox")
SCHEMA = ROOT / "qwqrl" / "config.py"


def schema_fields(model: type[BaseModel] = Recipe, prefix: str = "",
                  seen: set[tuple[type, str]] | None = None) -> list[tuple[str, str, type[BaseModel]]]:
    """(key path, field name, owning model) for every field, recursing into nested models."""
    seen = set() if seen is None else seen
    out = []
    for name, field in model.model_fields.items():
        if (model, name) in seen:
            continue
        seen.add((model, name))
        key = f"{prefix}{name}"
        out.append((key, name, model))
        for sub in _models_in(field.annotation):
            out.extend(schema_fields(sub, f"{key}.", seen))
    return out


def runtime_reads() -> set[str]:
    """Attribute names accessed (or `getattr`-ed by a constant name) outside the schema."""
    attrs: set[str] = set()
    for folder in SCANNED:
        for path in (ROOT / folder).rglob("*.py"):
            if path == SCHEMA:
                continue
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Attribute):
                    attrs.add(node.attr)
                elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                      and node.func.id == "getattr" and len(node.args) >= 2
                      and isinstance(node.args[1], ast.Constant)):
                    attrs.add(node.args[1].value)
    return attrs


def registry_reads() -> set[str]:
    """`stages.rewards.<name>` keys the router turns into terms, and the options each built-in
    verifier's function takes as keyword arguments."""
    enabled = {name: {"path": "rm"} if name == "general" else {} for name in BUILTIN}
    terms = RewardRouter.from_config(RewardsConfig.model_validate(enabled), max_new_tokens=8,
                                     reward_model=object()).terms
    keys = {f"stages.rewards.{t.name}" for t in terms}
    for name in BUILTIN:
        params = inspect.signature(batch_verifier(name)).parameters
        keys |= {f"stages.rewards.{name}.{p}" for p in params}
    return keys


def test_every_recipe_field_is_read_by_runtime_code() -> None:
    attrs, registry = runtime_reads(), registry_reads()
    unread = [key for key, name, _ in schema_fields() if name not in attrs and key not in registry]
    assert not unread, f"recipe fields no runtime code reads: {unread}"


def test_the_scan_sees_a_field_nobody_reads() -> None:
    """The check itself can fail: an invented field name is reported."""
    attrs = runtime_reads()
    assert "batch_size" in attrs and "max_prompt_tokens_never_used" not in attrs
    keys = [key for key, _, _ in schema_fields()]
    assert "stages.trainer.batch_size" in keys and "model.rope_scaling.factor" in keys

"""Every recipe field is read by runtime code: a field no code reads promises what never happens.

A static scan, precise enough to catch a forgotten field: for every field of every model in the
recipe schema (the tree `qwqrl recipe check --explain` walks), some module in qwqrl/, verifiers/
or sandbox/ other than the schema itself must access an attribute of that name, or hand the
field's parent to code wholesale with `<parent>.model_dump(...)` (as YaRN's rope scaling does).
Fields added later are walked the same way, so they are checked too.
"""
from __future__ import annotations

import ast
from pathlib import Path

from pydantic import BaseModel

from qwqrl.config import Recipe
from qwqrl.recipe import _models_in

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


def runtime_reads() -> tuple[set[str], set[str]]:
    """Attribute names accessed outside the schema, and names whose `.model_dump()` is taken."""
    attrs: set[str] = set()
    dumped: set[str] = set()
    for folder in SCANNED:
        for path in (ROOT / folder).rglob("*.py"):
            if path == SCHEMA:
                continue
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Attribute):
                    attrs.add(node.attr)
                    if node.attr == "model_dump" and isinstance(node.value, ast.Attribute):
                        dumped.add(node.value.attr)
                elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                      and node.func.id == "getattr" and len(node.args) >= 2
                      and isinstance(node.args[1], ast.Constant)):
                    attrs.add(node.args[1].value)
    return attrs, dumped


def test_every_recipe_field_is_read_by_runtime_code() -> None:
    attrs, dumped = runtime_reads()
    fields = schema_fields()
    # A model handed over wholesale (`cfg.rope_scaling.model_dump()`) consumes all its fields.
    parents_dumped = {m for _, name, owner in fields if name in dumped
                      for m in _models_in(owner.model_fields[name].annotation)}
    unread = [key for key, name, owner in fields
              if name not in attrs and owner not in parents_dumped]
    assert not unread, f"recipe fields no runtime code reads: {unread}"


def test_the_scan_sees_a_field_nobody_reads() -> None:
    """The check itself can fail: an invented field name is reported."""
    attrs, _ = runtime_reads()
    assert "batch_size" in attrs and "max_prompt_tokens_never_used" not in attrs
    keys = [key for key, _, _ in schema_fields()]
    assert "stages.trainer.batch_size" in keys and "model.rope_scaling.factor" in keys

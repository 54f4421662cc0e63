"""Load a recipe: YAML -> `--set` overrides -> schema validation -> data files checked.

Every user mistake becomes a `UserError` that names the file, the line where YAML knows it, the
key path (`stages[1].rewards.ifeval.weight`), what was expected and what was found. Unknown
keys get a "did you mean" from the schema's field names.
"""
from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from qwqrl.config import Recipe
from qwqrl.errors import UserError

Loc = tuple[Union[str, int], ...]


def load_recipe(path: str | Path, overrides: list[str] = (), check_files: bool = True) -> Recipe:
    """Read, override, validate; with `check_files`, also report missing data files now."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: recipe file not found")
    text = path.read_text()
    try:
        raw = yaml.safe_load(text)
        lines = _line_index(yaml.compose(text))
    except yaml.YAMLError as e:
        raise UserError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(raw, dict):
        raise UserError(f"{path}: a recipe is a YAML mapping, found {type(raw).__name__}")
    for item in overrides:
        apply_override(raw, item)
    recipe = validate(raw, source=str(path), lines=lines)
    if check_files:
        check_data_files(recipe, base=path.parent)
    return recipe


def validate(raw: dict[str, Any], source: str = "<recipe>",
             lines: dict[Loc, int] | None = None) -> Recipe:
    try:
        return Recipe.model_validate(raw)
    except ValidationError as e:
        problems = [_describe(err, source, lines or {}) for err in e.errors()]
        raise UserError(f"{source}: invalid recipe ({len(problems)} problem"
                        f"{'s' if len(problems) > 1 else ''}):\n  " + "\n  ".join(problems)) from None


def apply_override(raw: dict[str, Any], item: str) -> None:
    """`stages.0.trainer.lr=1e-6`: the value is parsed as YAML, so numbers and lists are typed."""
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise UserError(f"--set {item!r}: expected KEY.PATH=VALUE")
    parts = key.split(".")
    node: Any = raw
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        where = ".".join(parts[: i + 1])
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise UserError(f"--set {key}: `{where}` needs a list index below {len(node)}")
            idx: Any = int(part)
        elif isinstance(node, dict):
            idx = part
            if not last and not isinstance(node.get(part), (dict, list)):
                node[part] = {}
        else:
            raise UserError(f"--set {key}: `{'.'.join(parts[:i])}` is a value, not a mapping")
        if last:
            node[idx] = yaml.safe_load(value) if value else ""
        else:
            node = node[idx]


def check_data_files(recipe: Recipe, base: Path) -> None:
    """Missing local data is reported before any model loads, with the key path that names it;
    each source's converter is dry-run on its fixture rows (`qwqrl.data.records.dry_run`)."""
    from qwqrl.data.records import dry_run

    missing, bad = [], []
    for loc, src in _data_sources(recipe):
        if src.path is not None and resolve_data_path(src.path, base) is None:
            missing.append(f"{loc}.path: file not found: {src.path} (looked in {os.getcwd()} "
                           f"and {base.resolve()})")
        if src.converter is not None:
            bad.extend(f"{loc}.converter ({src.converter}): {p}" for p in dry_run(src))
    if missing:
        raise UserError("data files missing:\n  " + "\n  ".join(missing))
    if bad:
        raise UserError("converters do not make valid records of their fixture rows:\n  "
                        + "\n  ".join(bad))


def resolve_data_path(path: str, base: Path) -> Path | None:
    """Relative data paths are tried against the working directory, then the recipe's folder."""
    for candidate in (Path(path), base / path):
        if candidate.is_file():
            return candidate
    return None


def dump_recipe(recipe: Recipe, path: Path) -> None:
    """The resolved recipe (defaults filled in) saved next to the run, atomically."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False))
    os.replace(tmp, path)


def explain(model: type[BaseModel] = Recipe, prefix: str = "") -> list[str]:
    """One line per field: key path, default, help text (for `recipe check --explain`)."""
    out = []
    for name, field in model.model_fields.items():
        key = prefix + name
        if get_origin(field.annotation) is list:
            key += "[]"
        subs = _models_in(field.annotation)
        if len(subs) > 1:  # the stage union: list each kind's fields
            for sub in subs:
                kind = get_args(sub.model_fields["kind"].annotation)[0]
                out.extend(explain(sub, f"{key}(kind={kind})."))
            continue
        if subs:
            out.extend(explain(subs[0], f"{key}."))
            continue
        default = ("required" if field.is_required()
                   else f"default {field.get_default(call_default_factory=True)!r}")
        out.append(f"{key}: {default}. {field.description or ''}".rstrip())
    return out


# ------------------------------------------------------------------------------------- helpers


def _data_sources(recipe: Recipe):
    for i, stage in enumerate(recipe.stages):
        for j, src in enumerate(stage.data.train):
            yield f"stages[{i}].data.train[{j}]", src
    for j, src in enumerate(recipe.eval.sets):
        yield f"eval.sets[{j}]", src


def _describe(err: dict[str, Any], source: str, lines: dict[Loc, int]) -> str:
    loc = _strip_union_tags(tuple(err["loc"]))
    where = _format_loc(loc)
    line = _nearest_line(loc, lines)
    at = f"line {line}, " if line else ""
    if err["type"] == "extra_forbidden":
        key = loc[-1]
        options = _field_names(loc[:-1])
        hint = difflib.get_close_matches(str(key), options, n=1)
        suggestion = f"; did you mean `{hint[0]}`?" if hint else f"; expected one of {sorted(options)}"
        return f"{at}{where}: unknown key{suggestion}"
    found = err.get("input")
    shown = repr(found) if not isinstance(found, dict) else "a mapping"
    if err["type"] == "missing":
        return f"{at}{where}: required key is missing"
    msg = err["msg"].removeprefix("Value error, ")
    return f"{at}{where}: {msg} (found {shown})" if err["type"] != "value_error" else f"{at}{where}: {msg}"


def _strip_union_tags(loc: Loc) -> Loc:
    """Pydantic puts the discriminator value (`rl`, `sft`) into the loc; users never wrote it."""
    out: list[str | int] = []
    for i, part in enumerate(loc):
        if part in ("rl", "sft") and i > 0 and isinstance(loc[i - 1], int):
            continue
        out.append(part)
    return tuple(out)


def _format_loc(loc: Loc) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _field_names(loc: Loc) -> list[str]:
    """Field names of the schema model at `loc` (walking through lists, dicts and unions)."""
    models: list[type[BaseModel]] = [Recipe]
    for part in loc:
        if isinstance(part, int):
            continue
        nxt = []
        for m in models:
            if part in m.model_fields:
                nxt.extend(_models_in(m.model_fields[part].annotation))
        models = nxt
    return sorted({name for m in models for name in m.model_fields})


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found = []
    for arg in get_args(annotation):
        found.extend(_models_in(arg))
    return found


def _line_index(node: yaml.Node | None, loc: Loc = ()) -> dict[Loc, int]:
    """Map each key path in the YAML document to its 1-based line number."""
    index: dict[Loc, int] = {}
    if node is None:
        return index
    index[loc] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            sub = loc + (key.value,)
            index.update(_line_index(value, sub))
            index[sub] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, value in enumerate(node.value):
            index.update(_line_index(value, loc + (i,)))
    return index


def _nearest_line(loc: Loc, lines: dict[Loc, int]) -> int | None:
    for n in range(len(loc), -1, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return None


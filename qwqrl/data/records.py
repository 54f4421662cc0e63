"""Load one data source into validated records, or say exactly which record is wrong and why.

A source is a local file (`.jsonl`, `.json`, `.parquet`), a `datasets` hub id, or a built-in
generator (`qwqrl.data.synthetic`). Every record is checked against the record contract in
DESIGN.md before training starts, because a missing `answer` found at step 900 costs a run; the
error names the file and line (`data/math.jsonl:17: field "answer" is required for task "math"`).
JSONL is read line by line here rather than through `datasets` so bad JSON gets a line number too.

Public datasets rarely follow the contract as published; a source's column mapping (`rename`, a
named `converter` from `qwqrl.data.converters`, `fixed` values) turns each row into a record
first (`map_row`), and `dry_run` tries a converter on its fixture rows for `qwqrl recipe check`.
"""
from __future__ import annotations

import inspect
import json
import sys
from collections import Counter
from collections.abc import Collection
from pathlib import Path
from typing import Any, Callable

from qwqrl.config import TASKS, DataSource
from qwqrl.data.converters import CONVERTERS, Converter, SkipRow
from qwqrl.errors import UserError
from qwqrl.recipe import resolve_data_path
from qwqrl.verifiers.tool_call import contract_problems

ROLES = ("system", "user", "assistant")
MAX_REPORTED = 10  # errors listed per source; the rest are counted

Problem = str  # "field ...: what was expected", without the location


def load_source(src: DataSource, base: Path, tasks: Collection[str] = TASKS) -> list[dict]:
    """Read `src` (relative paths: working directory, then `base`), map each row to a record
    (`map_row`), keep the first `limit` records, validate every record and give each a stable
    `id` if it has none. Rows a converter skips are counted and reported, never silently lost.
    `tasks`: the record tasks allowed (built-in ones, plus those the recipe's custom rewards judge)."""
    name, located = _read(src, base)
    if not located:
        raise UserError(f"{name}: no records")
    records, errors, skipped = [], [], Counter()
    for index, (where, row) in enumerate(located):
        if src.limit is not None and len(records) >= src.limit:
            break
        if not isinstance(row, dict):
            errors.append(f"{where}: a record is a JSON object (found {_kind(row)})")
            continue
        try:
            record = map_row(row, src)
        except SkipRow as e:
            skipped[str(e)] += 1
            continue
        except MappingError as e:
            errors.append(f"{where}: {e}")
            continue
        errors.extend(f"{where}: {p}" for p in validate_record(record, tasks))
        if record.get("id") is None:
            record["id"] = f"{name}#{index}"
        records.append(record)
    if errors:
        shown = errors[:MAX_REPORTED]
        more = len(errors) - len(shown)
        raise UserError("\n".join(shown) + (f"\n... and {more} more problems" if more else ""))
    if skipped:
        reasons = "; ".join(f"{reason}: {n}" for reason, n in skipped.most_common())
        print(f"{name}: skipped {sum(skipped.values())} rows that converter "
              f"{src.converter!r} cannot make checkable records of ({reasons})", file=sys.stderr)
    if not records:
        raise UserError(f"{name}: no records left after converter {src.converter!r} "
                        f"skipped every row")
    return records


class MappingError(ValueError):
    """A row the source's column mapping cannot apply to; the message names the step."""


def map_row(row: dict[str, Any], src: DataSource) -> dict[str, Any]:
    """One source row -> one record: `rename` columns, then the `converter`, then the `fixed`
    fields, then the source's `task`. Raises SkipRow (the converter's) or MappingError."""
    if src.rename:
        missing = [c for c in src.rename if c not in row]
        if missing:
            raise MappingError(f"rename: no column {', '.join(map(repr, missing))} "
                               f"(columns: {', '.join(sorted(row))})")
        renamed = {k: v for k, v in row.items() if k not in src.rename}
        renamed.update({new: row[old] for old, new in src.rename.items()})
        row = renamed
    if src.converter is not None:
        row = _convert(CONVERTERS[src.converter], row)
    if src.fixed:
        row = {**row, **src.fixed}
    if src.task is not None:
        row["task"] = src.task
    return row


def _convert(converter: Converter, row: dict[str, Any]) -> dict[str, Any]:
    try:
        record = converter.fn(row)
    except KeyError as e:
        raise MappingError(f"converter {converter.name!r}: missing field {e.args[0]!r} "
                           f"(columns: {', '.join(sorted(row))})") from None
    except (ValueError, TypeError, AttributeError) as e:
        raise MappingError(f"converter {converter.name!r}: {e}") from None
    if not isinstance(record, dict):
        raise MappingError(f"converter {converter.name!r} returned {_kind(record)}, not a record")
    return record


def dry_run(src: DataSource) -> list[Problem]:
    """Run the source's converter (then `fixed` and `task`) on the converter's fixture rows,
    which are in the dataset's own schema, and validate what comes out: a wrong converter or a
    `task`/`fixed` that contradicts it shows at `recipe check`, before any data is downloaded.
    `rename` is not applied: it maps the user's data onto the schema the fixtures already have."""
    converter = CONVERTERS[src.converter]
    fixture = f"fixtures/{converter.fixture}"
    problems, made = [], 0
    for lineno, row in enumerate(converter.fixture_rows(), 1):
        try:
            record = map_row(row, src.model_copy(update={"rename": {}}))
        except SkipRow:
            continue
        except MappingError as e:
            problems.append(f"{fixture}:{lineno}: {e}")
            continue
        made += 1
        problems.extend(f"{fixture}:{lineno}: {p}" for p in validate_record(record))
    if not made:
        problems.append(f"{fixture}: converter {converter.name!r} made no record of its rows")
    return problems


def validate_record(record: dict[str, Any], tasks: Collection[str] = TASKS) -> list[Problem]:
    """Problems with one record against the contract; empty when it is valid. Tasks without
    built-in checks (a custom reward's) need only a prompt."""
    task = record.get("task")
    if task is None:
        return ['field "task" is required (or set `task` on the data source)']
    if task not in tasks:
        return [f'field "task" must be one of {", ".join(tasks)} (found {task!r})']
    problems = _check_prompt(record.get("prompt"))
    for key in ("completion", "language"):
        if record.get(key) is not None and not isinstance(record[key], str):
            problems.append(f'field "{key}" must be a string (found {_kind(record[key])})')
    if record.get("id") is not None and not isinstance(record["id"], (str, int)):
        problems.append(f'field "id" must be a string or an integer (found {_kind(record["id"])})')
    return problems + TASK_CHECKS.get(task, lambda r: [])(record)


# ------------------------------------------------------------------------------------- reading


def _read(src: DataSource, base: Path) -> tuple[str, list[tuple[str, Any]]]:
    """The source's display name and its raw records, each with where it came from."""
    if src.path is not None:
        path = resolve_data_path(src.path, base)
        if path is None:
            raise UserError(f"{src.path}: file not found "
                            f"(looked in {Path.cwd()} and {base.resolve()})")
        return src.path, READERS.get(path.suffix, _unknown_suffix)(src.path, path)
    if src.hub is not None:
        return src.hub, _numbered(src.hub, _read_hub(src.hub, src.options))
    name = _synthetic_name(src)
    return name, _numbered(name, _generate(src))


def read_json_lines(path: Path) -> list[Any]:
    """The rows of a JSON Lines file whatever its suffix (BFCL's `.json` files are JSON Lines)."""
    return [row for _, row in _read_jsonl(str(path), path)]


def _read_jsonl(name: str, path: Path) -> list[tuple[str, Any]]:
    out = []
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                out.append((f"{name}:{lineno}", json.loads(line)))
            except json.JSONDecodeError as e:
                raise UserError(f"{name}:{lineno}: not valid JSON: {e.msg} "
                                f"(column {e.colno})") from None
    return out


def _read_json(name: str, path: Path) -> list[tuple[str, Any]]:
    """A JSON array of records; many `.json` files on the hub are JSON Lines, so accept those."""
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return _read_jsonl(name, path)
    if not isinstance(data, list):
        raise UserError(f"{name}: expected a JSON array of records (or JSON Lines), "
                        f"found {_kind(data)}")
    return _numbered(name, data)


def _read_parquet(name: str, path: Path) -> list[tuple[str, Any]]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as e:  # pyarrow raises several types for a corrupt or foreign file
        raise UserError(f"{name}: cannot read as Parquet: {e}") from None
    return _numbered(name, table.to_pylist())


def _unknown_suffix(name: str, path: Path) -> list[tuple[str, Any]]:
    raise UserError(f"{name}: unknown data file type {path.suffix!r}; expected one of "
                    f"{', '.join(READERS)}")


READERS: dict[str, Callable[[str, Path], list[tuple[str, Any]]]] = {
    ".jsonl": _read_jsonl, ".json": _read_json, ".parquet": _read_parquet,
}


def _read_hub(hub_id: str, options: dict[str, Any]) -> list[dict]:
    import datasets

    try:
        loaded = datasets.load_dataset(hub_id, **options)
    except (OSError, ValueError) as e:  # not found, offline, unknown config or split
        raise UserError(f"{hub_id}: cannot load with datasets.load_dataset: {e}") from None
    if isinstance(loaded, datasets.DatasetDict):
        if len(loaded) != 1:
            raise UserError(f"{hub_id}: has splits {sorted(loaded)}; choose one with "
                            f"options: {{split: ...}}")
        loaded = next(iter(loaded.values()))
    return loaded.to_list()


def _generate(src: DataSource) -> list[dict]:
    from qwqrl.data.synthetic import GENERATORS

    fn = GENERATORS[src.synthetic]
    options = {"seed": 0, **src.options}
    try:
        inspect.signature(fn).bind(**options)
    except TypeError as e:
        params = ", ".join(inspect.signature(fn).parameters)
        raise UserError(f"synthetic {src.synthetic!r}: bad options {src.options} ({e}); "
                        f"it takes: {params}") from None
    return fn(**options)


def _synthetic_name(src: DataSource) -> str:
    shown = ",".join(f"{k}={v}" for k, v in sorted(src.options.items()))
    return f"{src.synthetic}({shown})"


def _numbered(name: str, rows: list[Any]) -> list[tuple[str, Any]]:
    """Locations for sources without lines: 1-based record numbers."""
    return [(f"{name}: record {i}", row) for i, row in enumerate(rows, 1)]


# ---------------------------------------------------------------------------------- validation


def _check_prompt(prompt: Any) -> list[Problem]:
    expected = 'field "prompt" must be a non-empty string or a list of {role, content} messages'
    if isinstance(prompt, str):
        return [] if prompt.strip() else [f"{expected} (found an empty string)"]
    if not isinstance(prompt, list) or not prompt:
        return [f"{expected} (found {_kind(prompt)})"]
    for i, message in enumerate(prompt):
        if not isinstance(message, dict):
            return [f'field "prompt[{i}]" must be a {{role, content}} message '
                    f"(found {_kind(message)})"]
        if message.get("role") not in ROLES:
            return [f'field "prompt[{i}].role" must be one of {", ".join(ROLES)} '
                    f'(found {message.get("role")!r})']
        if not isinstance(message.get("content"), str):
            return [f'field "prompt[{i}].content" must be a string '
                    f'(found {_kind(message.get("content"))})']
    if not any(m["role"] == "user" for m in prompt):
        return ['field "prompt" needs at least one message with role "user"']
    return []


def _check_math(record: dict[str, Any]) -> list[Problem]:
    answer = record.get("answer")
    if answer is None:
        return ['field "answer" is required for task "math"']
    usable = isinstance(answer, (str, int, float)) and not isinstance(answer, bool)
    if not usable or not str(answer).strip():
        return [f'field "answer" must be a non-empty string or a number (found {_kind(answer)})']
    return []


# Per test format of the contract: the list it needs, and the typed keys each case needs
# (None: the items are plain strings).
TEST_FORMATS: dict[str, tuple[str, dict[str, type] | None]] = {
    "stdio": ("cases", {"input": str, "output": str}),
    "call": ("cases", {"args": list}),
    "assert": ("asserts", None),
}


def _check_code(record: dict[str, Any]) -> list[Problem]:
    if record.get("tests") is not None:
        return _check_tests(record["tests"])
    if record.get("input_output") is not None:
        return _check_input_output(record["input_output"])
    return ['field "tests" (or APPS/TACO "input_output") is required for task "code"']


def _check_tests(tests: Any) -> list[Problem]:
    if not isinstance(tests, dict) or tests.get("type") not in TEST_FORMATS:
        found = f'"type" {tests.get("type")!r}' if isinstance(tests, dict) else _kind(tests)
        return [f'field "tests" must be an object with "type" one of {", ".join(TEST_FORMATS)} '
                f"(found {found})"]
    kind = tests["type"]
    key, case_keys = TEST_FORMATS[kind]
    if kind == "call" and not isinstance(tests.get("fn_name"), str):
        return ['field "tests.fn_name" must be a string for "call" tests']
    items = tests.get(key)
    if not isinstance(items, list) or not items:
        return [f'field "tests.{key}" must be a non-empty list for "{kind}" tests '
                f"(found {_kind(items)})"]
    for i, item in enumerate(items):
        where = f"tests.{key}[{i}]"
        if case_keys is None:
            if not isinstance(item, str):
                return [f'field "{where}" must be a string (found {_kind(item)})']
            continue
        if not isinstance(item, dict):
            return [f'field "{where}" must be an object (found {_kind(item)})']
        for name, typ in case_keys.items():
            if not isinstance(item.get(name), typ):
                return [f'field "{where}.{name}" must be a {typ.__name__} '
                        f"(found {_kind(item.get(name))})"]
        if kind == "call" and "expected" not in item:
            return [f'field "{where}.expected" is required for "call" tests']
    return []


def _check_input_output(value: Any) -> list[Problem]:
    """APPS/TACO: a JSON string (or its parsed dict) with equally long `inputs` and `outputs`."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as e:
            return [f'field "input_output" is not valid JSON: {e.msg}']
    if not isinstance(value, dict):
        return [f'field "input_output" must be a JSON object with "inputs" and "outputs" '
                f"(found {_kind(value)})"]
    inputs, outputs = value.get("inputs"), value.get("outputs")
    if not isinstance(inputs, list) or not isinstance(outputs, list) or not inputs:
        return ['field "input_output" must have non-empty lists "inputs" and "outputs"']
    if len(inputs) != len(outputs):
        return [f'field "input_output" has {len(inputs)} inputs but {len(outputs)} outputs']
    return []


def _check_ifeval(record: dict[str, Any]) -> list[Problem]:
    ids, kwargs = record.get("instruction_id_list"), record.get("kwargs")
    for key, value, typ in (("instruction_id_list", ids, str), ("kwargs", kwargs, dict)):
        if value is None:
            return [f'field "{key}" is required for task "ifeval"']
        if not isinstance(value, list) or not all(isinstance(v, typ) for v in value):
            return [f'field "{key}" must be a list of {typ.__name__}s (found {_kind(value)})']
    if not ids:
        return ['field "instruction_id_list" must not be empty']
    if len(ids) != len(kwargs):
        return [f'field "kwargs" must have one entry per instruction: {len(ids)} instructions, '
                f"{len(kwargs)} kwargs"]
    return []


TASK_CHECKS: dict[str, Callable[[dict[str, Any]], list[Problem]]] = {
    "math": _check_math, "code": _check_code, "ifeval": _check_ifeval, "general": lambda r: [],
    "tool_call": contract_problems,
}


def _kind(value: Any) -> str:
    """How a wrong value is shown: short values verbatim, others by type."""
    if isinstance(value, (bool, int, float)) or value is None:
        return repr(value)
    if isinstance(value, str):
        return repr(value) if len(value) <= 40 else f"a string of {len(value)} characters"
    return {"dict": "an object", "list": "a list"}.get(type(value).__name__, type(value).__name__)

"""Code sets: a problem statement and tests in the sandbox's `tests` contract.

- open-r1/codeforces (configs default, verifiable, verifiable-prompts): `official_tests`, a list
  of {input, output}, become stdio cases; `time_limit` (s) and `memory_limit` (MB) become the
  record's `limits`. Problems our exact-output judge cannot score fairly are skipped: those with
  a `generated_checker` (several answers accepted), interactive ones, and `input_mode: file`.
- agentica-org/DeepCoder-Preview-Dataset (configs lcbv5, primeintellect, taco, codeforces):
  `tests` is a JSON string in the layout of the set it came from: LiveCodeBench's list of
  {input, output, testtype} (functional tests: one JSON value per input line, called on
  `class Solution`, name in `metadata.func_name`), PrimeIntellect's list of {input, output,
  type}; its `function_call` cases are skipped), or TACO's APPS `{inputs, outputs, fn_name?}`.
- livecodebench/code_generation_lite (the original LiveCodeBench release): the same test
  layout, with `private_test_cases` compressed, and `contest_date`, which the record keeps so an
  evaluation can hold out problems newer than a model's training data. DeepCoder's lcbv5 rows
  do not carry the date.
"""
from __future__ import annotations

import base64
import io
import json
import pickle
import zlib
from typing import Any

from qwqrl.data.converters import Row, SkipRow, register

# --------------------------------------------------------------------------------- codeforces


@register("codeforces", fixture="codeforces.jsonl")
def codeforces(row: Row) -> Row:
    """open-r1/codeforces: statement (or the `prompt` column of verifiable-prompts) -> prompt,
    `official_tests` -> stdio tests, time/memory limits kept; checker, interactive and
    file-input problems skipped."""
    if row.get("interaction_format"):
        raise SkipRow("interactive problem")
    if row.get("generated_checker"):
        raise SkipRow("custom output checker (several answers accepted)")
    if row.get("input_mode") not in (None, "stdio"):
        raise SkipRow("reads its input from a file")
    tests = row.get("official_tests") or []
    if not tests:
        raise SkipRow("no official tests")
    if not row.get("prompt") and not (row.get("description") or "").strip():
        raise SkipRow("no problem statement")
    record: Row = {
        "id": row["id"], "task": "code",
        "prompt": row.get("prompt") or _codeforces_statement(row),
        "tests": {"type": "stdio",
                  "cases": [{"input": t["input"], "output": t["output"]} for t in tests]},
    }
    limits = {}
    if row.get("time_limit"):
        limits["time_s"] = float(row["time_limit"])
    if row.get("memory_limit"):
        limits["memory_mb"] = int(row["memory_limit"])
    if limits:
        record["limits"] = limits
    if row.get("language"):  # verifiable-prompts: the language its prompt asks for
        record["language"] = row["language"]
    return record


def _codeforces_statement(row: Row) -> str:
    """The statement as Codeforces shows it: limits, legend, input, output, examples, note."""
    parts = [f"# {row['title']}"]
    if row.get("time_limit") and row.get("memory_limit"):
        parts.append(f"Time limit per test: {row['time_limit']:g} seconds\n"
                     f"Memory limit per test: {row['memory_limit']:g} megabytes")
    parts.append(row["description"].strip())
    for heading, key in (("Input", "input_format"), ("Output", "output_format")):
        if row.get(key):
            parts.append(f"## {heading}\n\n{row[key].strip()}")
    for i, example in enumerate(row.get("examples") or [], 1):
        parts.append(f"## Example {i}\n\nInput:\n```\n{example['input'].rstrip()}\n```\n\n"
                     f"Output:\n```\n{example['output'].rstrip()}\n```")
    if row.get("note"):
        parts.append(f"## Note\n\n{row['note'].strip()}")
    return "\n\n".join(parts)


# ---------------------------------------------------------------------------------- deepcoder


@register("deepcoder", fixture="deepcoder.jsonl")
def deepcoder(row: Row) -> Row:
    """agentica-org/DeepCoder-Preview-Dataset: `problem` (+ `starter_code`) -> prompt, the JSON
    `tests` (LiveCodeBench, PrimeIntellect or TACO layout) -> stdio or call tests."""
    tests = json.loads(row["tests"]) if isinstance(row["tests"], str) else row["tests"]
    metadata = row.get("metadata") or {}
    if isinstance(metadata, str):
        metadata = json.loads(metadata)
    if isinstance(tests, dict):  # TACO: APPS input_output, which the contract accepts as is
        record: Row = {"task": "code", "input_output": _apps(tests)}
    else:
        record = {"task": "code", "tests": _case_list(tests, metadata.get("func_name"))}
    record["prompt"] = _with_starter(row["problem"], row.get("starter_code"))
    return record


def _apps(tests: dict[str, Any]) -> dict[str, Any]:
    if not tests.get("inputs"):
        raise SkipRow("no tests")
    return {k: tests[k] for k in ("inputs", "outputs", "fn_name") if tests.get(k) is not None}


def _case_list(tests: list[dict[str, Any]], func_name: str | None) -> Row:
    """LiveCodeBench ({input, output, testtype}) or PrimeIntellect ({input, output, type})
    cases -> our stdio or call tests; one problem's cases share one kind."""
    if not tests:
        raise SkipRow("no tests")
    kind = tests[0].get("testtype") or tests[0].get("type")
    if kind in ("stdin", "stdin_stdout"):
        return {"type": "stdio",
                "cases": [{"input": t["input"], "output": t["output"]} for t in tests]}
    if kind == "functional":  # LiveCodeBench: one JSON value per line of `input`
        if not func_name:
            raise ValueError('functional tests need "metadata.func_name"')
        return {"type": "call", "fn_name": func_name,
                "cases": [{"args": [json.loads(line) for line in t["input"].split("\n") if line],
                           "expected": json.loads(t["output"])} for t in tests]}
    if kind == "function_call":  # PrimeIntellect's call tests: no documented layout to trust
        raise SkipRow("PrimeIntellect function_call tests (layout not supported)")
    raise ValueError(f"unknown test type {kind!r} (expected stdin, functional, stdin_stdout "
                     f"or function_call)")


def _with_starter(problem: str, starter_code: str | None) -> str:
    if not starter_code or not starter_code.strip():
        return problem
    return (f"{problem.rstrip()}\n\nUse this starter code, completing the method(s) of the "
            f"`Solution` class:\n```python\n{starter_code.rstrip()}\n```")


# ------------------------------------------------------------------------------ livecodebench


@register("livecodebench", fixture="livecodebench.jsonl")
def livecodebench(row: Row) -> Row:
    """livecodebench/code_generation_lite: `question_content` (+ `starter_code`) -> prompt,
    public + private test cases -> stdio or call tests; `contest_date` (ISO date), `platform`
    and `difficulty` kept."""
    metadata = json.loads(row["metadata"]) if row.get("metadata") else {}
    cases = json.loads(row["public_test_cases"]) + _private_cases(row["private_test_cases"])
    record: Row = {
        "id": row["question_id"], "task": "code",
        "prompt": _with_starter(row["question_content"], row.get("starter_code")),
        "tests": _case_list(cases, metadata.get("func_name")),
        "contest_date": str(row["contest_date"])[:10],
    }
    record.update({k: row[k] for k in ("platform", "difficulty") if row.get(k)})
    return record


def _private_cases(value: str) -> list[dict[str, Any]]:
    """LiveCodeBench stores private cases as JSON, or (releases v2+) as base64 of a zlib-
    compressed pickle of that JSON string. Only a pickled `str` is accepted: the unpickler
    refuses every class, so a crafted row cannot run code."""
    if not value:
        return []
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        pass
    try:
        text = _StrOnlyUnpickler(io.BytesIO(zlib.decompress(base64.b64decode(value)))).load()
    except (zlib.error, pickle.UnpicklingError, EOFError) as e:
        raise ValueError(f"private_test_cases: neither JSON nor compressed JSON ({e})") from None
    if not isinstance(text, str):
        raise ValueError(f"private_test_cases: expected pickled JSON text, found {type(text)}")
    return json.loads(text)


class _StrOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        raise ValueError(f"private_test_cases: refusing to unpickle {module}.{name}")

"""Turn dataset records into evaluate requests.

Records come in several shapes: our canonical `tests` dict (stdio / call / assert), the same as
a JSON string, and the APPS/TACO `input_output` form ({"inputs", "outputs", "fn_name"?}), whose
inputs and outputs may be strings or lists of lines. Everything is normalized to the canonical
`tests` form here, so the server and the verifiers see one shape.
"""
from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

TEST_TYPES = ("stdio", "call", "assert")


def _joined(value: Any, where: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "\n".join(value) + ("\n" if value else "")
    raise ValueError(f"{where}: expected a string or a list of strings, got {type(value).__name__}")


def _from_input_output(io: dict) -> dict:
    inputs, outputs = io.get("inputs"), io.get("outputs")
    if not isinstance(inputs, list) or not isinstance(outputs, list):
        raise ValueError("input_output: expected lists under 'inputs' and 'outputs'")
    if len(inputs) != len(outputs):
        raise ValueError(f"input_output: {len(inputs)} inputs but {len(outputs)} outputs")
    if not inputs:
        raise ValueError("input_output: expected at least one test case")
    if io.get("fn_name"):
        cases = [{"args": inp if isinstance(inp, list) else [inp], "expected": out}
                 for inp, out in zip(inputs, outputs)]
        return {"type": "call", "fn_name": io["fn_name"], "cases": cases}
    cases = [{"input": _joined(inp, f"input_output.inputs[{i}]"),
              "output": _joined(out, f"input_output.outputs[{i}]")}
             for i, (inp, out) in enumerate(zip(inputs, outputs))]
    return {"type": "stdio", "cases": cases}


def normalize_tests(tests: Any) -> Any:
    """Canonical `tests` dict from any accepted form (a JSON string, APPS/TACO input_output)."""
    if isinstance(tests, (str, bytes)):
        try:
            tests = json.loads(tests)
        except json.JSONDecodeError as e:
            raise ValueError(f"tests: a string must hold JSON ({e.msg} at char {e.pos})") from None
    if not isinstance(tests, dict):
        raise ValueError(f"tests: expected an object, got {type(tests).__name__}")
    if "type" not in tests and "inputs" in tests:
        return _from_input_output(tests)
    if tests.get("type") not in TEST_TYPES:
        raise ValueError(f"tests.type: expected one of {', '.join(TEST_TYPES)} (or the APPS/TACO "
                         f"input_output form), got {tests.get('type')!r}")
    return tests


def request_from_record(record: dict, code: str) -> dict:
    """An /v1/evaluate request for `code` against the tests of a dataset record.

    Language and limits may sit at the record's top level or inside its `tests`; ValueError
    (naming the field) for anything malformed.
    """
    from qwqrl.sandbox.models import EvaluateRequest

    if not isinstance(record, dict):
        raise ValueError(f"record: expected a dict, got {type(record).__name__}")
    if "tests" in record and record["tests"] is not None:
        tests = normalize_tests(record["tests"])
    elif "input_output" in record and record["input_output"] is not None:
        tests = normalize_tests(record["input_output"])
    else:
        raise ValueError("record: expected a 'tests' or an 'input_output' field")
    tests = dict(tests)
    language = tests.pop("language", None) or record.get("language") or "python"
    limits = tests.pop("limits", None) or record.get("limits") or {}
    request = {"language": language, "code": code, "tests": tests, "limits": limits}
    try:
        return EvaluateRequest.model_validate(request).model_dump(exclude_defaults=False)
    except ValidationError as e:
        raise ValueError(describe_validation_error(e)) from None


def describe_validation_error(error: ValidationError) -> str:
    """One line per problem: the field's dotted path and what was expected."""
    return "; ".join(f"{'.'.join(str(p) for p in err['loc']) or 'request'}: {err['msg']}"
                     for err in error.errors())

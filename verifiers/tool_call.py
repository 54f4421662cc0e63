"""Function-call verifier: 1.0 when the calls after the reasoning are the expected ones, else 0.0.

The judging rules are those of BFCL's AST checker (gorilla, berkeley-function-call-leaderboard,
`ast_checker.py`), applied to calls written as Qwen's chat template writes them, one block per call
after the last `</think>`:

    <tool_call>
    {"name": "get_weather", "arguments": {"city": "Paris"}}
    </tool_call>

A record carries `tools` (OpenAI function schemas) and `answer`, BFCL's possible-answer form: a list
of `{function_name: {param: [acceptable values...]}}`, `""` among the values meaning the parameter
may be left out, and `[]` meaning no call may be made. Both may be JSON strings (a `datasets` /
Arrow column cannot hold lists that mix strings and numbers, as `[10, ""]` does).

Rules, each pinned by a test in tests/verifiers/test_tool_call.py (docs/tool_call.md lists them):
- unfinished: reasoning opened and never closed scores 0; calls inside the reasoning are ignored.
- malformed: an unclosed or stray tag, or a block that is not a JSON object with a string `name`
  and an object `arguments`, scores 0.
- as many calls as expected (`[]`: none at all); the pairing of calls with expected calls is
  order-free and one-to-one, found as a bipartite matching (BFCL pairs greedily in the answer's
  order, which rejects some correct sets of calls; see `_matching`).
- one call matches one expected call when: the function name is equal; every parameter the schema
  requires is present; every parameter given is in the schema and in the expected call; each
  value has the schema's JSON type exactly (an integer is accepted for a number, a boolean is
  never a number; array items are checked against `items`); the value is among the acceptable
  ones, strings compared after BFCL's normalisation (lower case, without spaces and `,./-_*^`),
  lists item by item in order, objects key by key in the possible-answer form; and every
  expected parameter left out carries `""`.

`Verdict.detail`: `verifier` ("tool_call"), `calls` (the calls parsed from the answer, in order)
and, when the score is 0, `reason` (unfinished, malformed, wrong_count, mismatch) with `message`
saying what did not match. A record whose `tools`/`answer` break the contract scores None with an
error naming the field.

    verify_batch([{"tools": [...], "answer": [{"get_weather": {"city": ["Paris"]}}],
                   "completion": '...</think>\\n<tool_call>\\n{"name": "get_weather", ...}'}])
"""
from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from qwqrl.verifiers.base import Verdict, completion_text, final_answer
from qwqrl.verifiers.reward_fn import reward_function

CALL_OPEN, CALL_CLOSE = "<tool_call>", "</tool_call>"
_TAG = re.compile(f"{re.escape(CALL_OPEN)}|{re.escape(CALL_CLOSE)}")
# BFCL's standardize_string: these characters are dropped before strings are compared, so
# "April 1, 2024" equals "april 1 2024"; single quotes become double quotes.
_IGNORED_IN_STRINGS = re.compile(r"[ ,./\-_*^]")

# JSON-schema types, and BFCL's own names for the same (its function docs say float/dict/tuple).
_TYPE_ALIASES = {"float": "number", "dict": "object", "tuple": "array"}
_TYPE_CHECKS = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
    "null": lambda v: v is None,
    "any": lambda v: True,
}

Call = dict[str, Any]  # {"name": str, "arguments": dict}
Expected = tuple[str, dict[str, list]]  # (function name, {param: acceptable values})


class ContractError(ValueError):
    """The record's `tools` or `answer` break the record contract."""


# ------------------------------------------------------------------------------ the record


def _decoded(record: Mapping[str, Any], key: str) -> Any:
    value = record.get(key)
    if value is None:
        raise ContractError(f'field "{key}" is required for task "tool_call"')
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as e:
            raise ContractError(f'field "{key}" is a string but not JSON: {e.msg}') from None
    return value


def tool_schemas(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The record's tools in OpenAI form (`{"type": "function", "function": {...}}`), as a chat
    template's `tools=` takes them. A bare `{"name", "parameters"}` (BFCL's form) is wrapped."""
    tools = _decoded(record, "tools")
    if not isinstance(tools, list):
        raise ContractError('field "tools" must be a list of function schemas')
    out = []
    for i, tool in enumerate(tools):
        function = tool.get("function", tool) if isinstance(tool, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise ContractError(f'field "tools[{i}]" must be {{"type": "function", "function": '
                                f'{{"name": ..., "parameters": ...}}}}')
        params = function.get("parameters", {})
        if not isinstance(params, dict) or not isinstance(params.get("properties", {}), dict) \
                or not isinstance(params.get("required", []), list):
            raise ContractError(f'field "tools[{i}].parameters" must be a JSON schema object with '
                                f'"properties" (an object) and "required" (a list)')
        properties = params.get("properties", {})
        for name, schema in properties.items():
            _check_schema(schema, f"tools[{i}].parameters.properties.{name}")
        undeclared = [p for p in params.get("required", []) if p not in properties]
        if undeclared:  # a call would have to give it, and giving it would be unexpected
            raise ContractError(f'field "tools[{i}].parameters.required" names {undeclared} '
                                f'that "properties" does not declare')
        out.append({"type": "function", "function": function})
    return out


def _check_schema(schema: Any, where: str) -> None:
    if not isinstance(schema, dict):
        raise ContractError(f'field "{where}" must be a JSON schema object')
    types = schema.get("type", "any")
    for t in types if isinstance(types, list) else [types]:
        if not isinstance(t, str) or _TYPE_ALIASES.get(t, t) not in _TYPE_CHECKS:
            raise ContractError(f'field "{where}.type" must be one of '
                                f'{", ".join(sorted(_TYPE_CHECKS))} (found {t!r})')
    if "items" in schema:
        _check_schema(schema["items"], f"{where}.items")


def expected_calls(record: Mapping[str, Any]) -> list[Expected]:
    """The record's `answer` as (name, {param: acceptable values}) pairs."""
    answer = _decoded(record, "answer")
    if not isinstance(answer, list):
        raise ContractError('field "answer" must be a list of {function_name: {param: '
                            '[acceptable values]}} (or [] for no call)')
    out = []
    for i, call in enumerate(answer):
        if not isinstance(call, dict) or len(call) != 1:
            raise ContractError(f'field "answer[{i}]" must be an object with exactly one key, '
                                f'the function name')
        (name, params), = call.items()
        if not isinstance(params, dict) or \
                not all(isinstance(v, list) and v for v in params.values()):
            raise ContractError(f'field "answer[{i}].{name}" must map each parameter to a '
                                f'non-empty list of acceptable values')
        out.append((name, params))
    return out


def load(record: Mapping[str, Any]) -> tuple[dict[str, dict[str, Any]], list[Expected]]:
    """The record's functions by name and its expected calls, checked against each other
    (ContractError when they break the contract)."""
    functions = {t["function"]["name"]: t["function"] for t in tool_schemas(record)}
    expected = expected_calls(record)
    for i, (name, params) in enumerate(expected):
        if name not in functions:
            raise ContractError(f'field "answer[{i}]" calls {name!r}, which is not in "tools"')
        missing = [p for p in _required(functions[name]) if p not in params]
        if missing:  # no call could satisfy both the schema and the answer
            raise ContractError(f'field "answer[{i}].{name}" lacks required parameter(s) '
                                f'{", ".join(missing)}')
    return functions, expected


def contract_problems(record: Mapping[str, Any]) -> list[str]:
    """What is wrong with a tool_call record's `tools` and `answer`; empty when it can be judged."""
    try:
        load(record)
    except ContractError as e:
        return [str(e)]
    return []


def _required(function: Mapping[str, Any]) -> list[str]:
    return list(function.get("parameters", {}).get("required", []))


# ---------------------------------------------------------------------------- the completion


class Malformed(ValueError):
    pass


def parse_calls(answer: str) -> list[Call]:
    """The `<tool_call>` blocks of `answer`, in order; prose between them is allowed."""
    calls, start = [], None
    for tag in _TAG.finditer(answer):
        if tag.group() == CALL_OPEN:
            if start is not None:
                raise Malformed(f"{CALL_OPEN} opened again before {CALL_CLOSE}")
            start = tag.end()
            continue
        if start is None:
            raise Malformed(f"{CALL_CLOSE} without {CALL_OPEN}")
        calls.append(_parse_block(answer[start:tag.start()], len(calls) + 1))
        start = None
    if start is not None:
        raise Malformed(f"{CALL_OPEN} never closed")
    return calls


def _parse_block(body: str, number: int) -> Call:
    try:
        call = json.loads(body)
    except json.JSONDecodeError as e:
        raise Malformed(f"call {number}: not JSON ({e.msg})") from None
    if not isinstance(call, dict) or not isinstance(call.get("name"), str) \
            or not isinstance(call.get("arguments"), dict):
        raise Malformed(f'call {number}: expected {{"name": string, "arguments": object}}')
    return {"name": call["name"], "arguments": call["arguments"]}


# ------------------------------------------------------------------------------- matching


def standardize(text: str) -> str:
    """BFCL's string normalisation."""
    return _IGNORED_IN_STRINGS.sub("", text).lower().replace("'", '"')


def _same(value: Any, expected: Any) -> bool:
    """Literal equality with BFCL's tolerances: normalised strings, 1 == 1.0, booleans apart."""
    if isinstance(value, str) and isinstance(expected, str):
        return standardize(value) == standardize(expected)
    if isinstance(value, bool) or isinstance(expected, bool):
        return type(value) is type(expected) and value == expected
    if isinstance(value, int | float) and isinstance(expected, int | float):
        return value == expected
    if isinstance(value, list) and isinstance(expected, list):
        return len(value) == len(expected) and all(map(_same, value, expected))
    if isinstance(value, dict) and isinstance(expected, dict):
        return value.keys() == expected.keys() and all(_same(v, expected[k])
                                                       for k, v in value.items())
    return value is None and expected is None


def _types(schema: Mapping[str, Any]) -> list[str]:
    types = schema.get("type", "any")
    return [_TYPE_ALIASES.get(t, t) for t in (types if isinstance(types, list) else [types])]


def type_error(value: Any, schema: Mapping[str, Any]) -> str | None:
    types = _types(schema)
    if not any(_TYPE_CHECKS[t](value) for t in types):
        return f"expected type {' or '.join(types)}, got {json.dumps(value)}"
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            error = type_error(item, schema["items"])
            if error is not None:
                return f"item {error}"
    return None


def _object_matches(value: dict, expected: Any) -> bool:
    """BFCL's dict_checker: `expected` is {key: [acceptable values]}; keys given must be listed,
    keys left out must accept ""."""
    if not isinstance(expected, dict):
        return False
    if any(k not in expected or not any(_same(v, e) for e in expected[k])
           for k, v in value.items()):
        return False
    return all(k in value or "" in accepted for k, accepted in expected.items())


def _value_matches(value: Any, accepted: list, schema: Mapping[str, Any]) -> bool:
    """Objects (and arrays of objects) the schema declares are compared in the possible-answer
    form, as BFCL's dict_checker and list_dict_checker do; everything else literally."""
    if isinstance(value, dict) and "object" in _types(schema):
        return any(_object_matches(value, e) for e in accepted)
    items = schema.get("items")
    if isinstance(value, list) and isinstance(items, dict) and "object" in _types(items) \
            and all(isinstance(v, dict) for v in value):
        return any(isinstance(e, list) and len(e) == len(value)
                   and all(map(_object_matches, value, e)) for e in accepted)
    return any(_same(value, e) for e in accepted)


def call_error(call: Call, expected: Expected, function: Mapping[str, Any]) -> str | None:
    """Why `call` does not match `expected` (BFCL's simple_function_checker), or None."""
    name, accepted = expected
    if call["name"] != name:
        return f"called {call['name']!r}, expected {name!r}"
    args = call["arguments"]
    properties = function.get("parameters", {}).get("properties", {})
    for param in _required(function):
        if param not in args:
            return f"{name}: missing required parameter {param!r}"
    for param, value in args.items():
        if param not in properties or param not in accepted:
            return f"{name}: unexpected parameter {param!r}"
        error = type_error(value, properties[param])
        if error is not None:
            return f"{name}: parameter {param!r}: {error}"
        if not _value_matches(value, accepted[param], properties[param]):
            return (f"{name}: parameter {param!r} = {json.dumps(value)}, expected one of "
                    f"{json.dumps(accepted[param])}")
    for param, values in accepted.items():
        if param not in args and "" not in values:
            return f"{name}: parameter {param!r} left out but the answer needs it"
    return None


def _matching(fits: list[list[bool]]) -> list[int | None]:
    """A maximum one-to-one pairing of expected calls (rows) with calls (columns): for each row,
    its column or None (Kuhn's augmenting paths). BFCL's greedy pass gives each expected call the
    first unused call that fits, so [c1, c2] fails when expected A accepts either and B only c1;
    the calls a correct answer may make should not depend on the order they are written in."""
    owner: dict[int, int] = {}  # column -> row

    def augment(row: int, seen: set[int]) -> bool:
        for col, fit in enumerate(fits[row]):
            if fit and col not in seen:
                seen.add(col)
                if col not in owner or augment(owner[col], seen):
                    owner[col] = row
                    return True
        return False

    for row in range(len(fits)):
        augment(row, set())
    by_row = {row: col for col, row in owner.items()}
    return [by_row.get(row) for row in range(len(fits))]


# -------------------------------------------------------------------------------- judging


def _verdict(score: float | None, calls: list[Call], reason: str | None = None,
             message: str | None = None, error: str | None = None) -> Verdict:
    detail: dict[str, Any] = {"verifier": "tool_call", "calls": calls}
    if reason is not None:
        detail.update(reason=reason, message=message)
    return Verdict(score, detail, error)


def judge(record: Mapping[str, Any], *, think_opened: bool = True) -> Verdict:
    if record.get("completion") is None:
        return _verdict(None, [], error="record has no 'completion'")
    try:
        functions, expected = load(record)
    except ContractError as e:
        return _verdict(None, [], error=str(e))
    try:
        answer = final_answer(completion_text(record["completion"]), think_opened)
    except TypeError as e:
        return _verdict(None, [], error=str(e))
    if answer is None:
        return _verdict(0.0, [], "unfinished", "the reasoning was never closed")
    try:
        calls = parse_calls(answer)
    except Malformed as e:
        return _verdict(0.0, [], "malformed", str(e))
    if len(calls) != len(expected):
        return _verdict(0.0, calls, "wrong_count",
                        f"{len(calls)} call(s), expected {len(expected)}")
    errors = [[call_error(c, e, functions[e[0]]) for c in calls] for e in expected]
    pairs = _matching([[err is None for err in row] for row in errors])
    for row, col in enumerate(pairs):
        if col is None:
            name = expected[row][0]
            reasons = [err for c, err in zip(calls, errors[row])
                       if c["name"] == name and err is not None]
            return _verdict(0.0, calls, "mismatch",
                            reasons[0] if reasons else f"no unpaired call to {name!r} fits")
    return _verdict(1.0, calls)


def verify_batch(records: Sequence[Mapping[str, Any]], *, think_opened: bool = True
                 ) -> list[Verdict]:
    """Judge records carrying `tools`, `answer` and `completion`, in order."""
    return [judge(r, think_opened=think_opened) for r in records]


tool_call_reward = reward_function(verify_batch, "tool_call_reward")

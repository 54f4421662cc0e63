"""Salesforce/xlam-function-calling-60k (APIGen) rows -> `tool_call` records.

A row holds `id`, `query` (the user's request) and two JSON strings: `tools`, a list of
`{"name", "description", "parameters": {param: {"type", "description", "default"}}}` whose types
are Python-style strings ("str", "int, optional", "List[Dict[str, Any]]"), and `answers`, the
calls that fulfil the query, `[{"name", "arguments": {...}}]`. MadeAgents/xlam-irrelevance-7.5k
holds xLAM rows with the called tool removed from `tools` and no call expected (`answers` empty);
`answers` and `tools` may be JSON strings or lists, and `id` may be absent.

The record gets `tools` as OpenAI function schemas (JSON-schema types; a parameter is required
unless its type says "optional" or it has a default of its type, which a call may rely on) and
`answer` in BFCL's possible-answer form:
- a parameter the call gives accepts that value; if it equals the tool's default, leaving it
  out is accepted too ("");
- a parameter the call leaves out accepts its default or nothing; one without a default is not
  listed, so giving it fails as BFCL fails an unexpected parameter.
Every record is then checked against its own reference: the dataset's calls, judged by the
tool_call verifier, must score 1. A row that fails (a value of the wrong type, an argument the
tool does not declare, a call to an unlisted tool) raises SkipRow, so no record teaches the model
that the dataset's own answer is wrong.
"""
from __future__ import annotations

import json
import re
from typing import Any

from qwqrl.data.converters import SkipRow, register
from qwqrl.verifiers.tool_call import ContractError, call_error, load, type_error

_SCALARS = {"str": "string", "int": "integer", "float": "number", "bool": "boolean",
            "dict": "object", "list": "array", "tuple": "array", "set": "array"}
_GENERIC = re.compile(r"^(\w+)\[(.*)\]$")


def _split_top_level(text: str) -> list[str]:
    """"Dict[str, int], optional" -> ["Dict[str, int]", "optional"]: commas outside brackets."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += {"[": 1, "]": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    return parts + [text[start:].strip()]


def json_schema(python_type: str) -> dict[str, Any]:
    """A JSON schema for a Python-style type string; {} (any value) for types it cannot say."""
    python_type = python_type.strip()
    generic = _GENERIC.match(python_type)
    base = (generic.group(1) if generic else python_type).lower()
    args = _split_top_level(generic.group(2)) if generic else []
    if base == "optional" and len(args) == 1:
        return json_schema(args[0])
    if base == "union":
        schemas = [json_schema(a) for a in args if a.lower() != "none"]
        types = {s.get("type") for s in schemas}
        if types == {"integer", "number"}:
            return {"type": "number"}
        return schemas[0] if len(schemas) == 1 else {}
    if base not in _SCALARS:
        return {}
    schema: dict[str, Any] = {"type": _SCALARS[base]}
    if schema["type"] == "array" and len(args) == 1:
        items = json_schema(args[0])
        if items:
            schema["items"] = items
    return schema


def _tool(raw: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The OpenAI function schema for an xLAM tool, and each parameter's default."""
    properties, required, defaults = {}, [], {}
    for name, spec in (raw.get("parameters") or {}).items():
        type_text = str(spec.get("type", ""))
        schema = json_schema(_split_top_level(type_text)[0])
        if spec.get("description"):
            schema["description"] = spec["description"]
        properties[name] = schema
        if spec.get("default") not in (None, "") and type_error(spec["default"], schema) is None:
            defaults[name] = spec["default"]  # a default of the wrong type is no answer
        elif "optional" not in type_text.lower():
            required.append(name)
    function = {"name": raw["name"], "description": raw.get("description", ""),
                "parameters": {"type": "object", "properties": properties, "required": required}}
    return {"type": "function", "function": function}, defaults


def _accepted(value: Any, schema: dict[str, Any]) -> Any:
    """A literal value in the possible-answer form the verifier compares objects in."""
    if schema.get("type") == "object" and isinstance(value, dict):
        return {k: [v] for k, v in value.items()}
    if schema.get("items", {}).get("type") == "object" and isinstance(value, list):
        return [{k: [v] for k, v in item.items()} if isinstance(item, dict) else item
                for item in value]
    return value


def _expected(call: dict[str, Any], function: dict[str, Any],
              defaults: dict[str, Any]) -> dict[str, Any]:
    properties = function["parameters"]["properties"]
    args = call.get("arguments") or {}
    params = {}
    for name, schema in properties.items():
        if name in args:
            accepted = [_accepted(args[name], schema)]
            if name in defaults and defaults[name] == args[name]:
                accepted.append("")
        elif name in defaults:
            accepted = [_accepted(defaults[name], schema), ""]
        else:
            continue
        params[name] = accepted
    return {call["name"]: params}


@register("xlam_function_calling", fixture="xlam_function_calling.jsonl")
def xlam_function_calling(row: dict[str, Any]) -> dict[str, Any]:
    """Salesforce/xlam-function-calling-60k (and xlam-irrelevance-7.5k): query + tools + calls
    -> a tool_call record with the calls in BFCL's possible-answer form."""
    raw_tools = json.loads(row["tools"]) if isinstance(row["tools"], str) else row["tools"]
    calls = json.loads(row["answers"]) if isinstance(row["answers"], str) else row["answers"]
    tools, defaults = [], {}
    for raw in raw_tools:
        tool, tool_defaults = _tool(raw)
        tools.append(tool)
        defaults[raw["name"]] = tool_defaults
    functions = {t["function"]["name"]: t["function"] for t in tools}
    if any(c.get("name") not in functions for c in calls):
        raise SkipRow("calls a tool the row does not list")
    record = {"task": "tool_call", "prompt": row["query"], "tools": tools,
              "answer": [_expected(c, functions[c["name"]], defaults[c["name"]]) for c in calls]}
    if row.get("id") is not None:
        record["id"] = f"xlam-{row['id']}"
    try:
        _, expected = load(record)
    except ContractError as e:
        raise SkipRow("tools or calls break the record contract") from e
    for call, want in zip(calls, expected):
        if call_error({"name": call["name"], "arguments": call.get("arguments") or {}}, want,
                      functions[call["name"]]) is not None:
            raise SkipRow("its own calls do not pass the tool_call verifier")
    return record

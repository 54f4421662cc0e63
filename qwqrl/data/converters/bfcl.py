"""BFCL (gorilla-llm Berkeley Function Calling Leaderboard) non-live rows -> `tool_call` records.

BFCL keeps a category's questions and its answers in two files of the same name:
`BFCL_v3_simple.json` rows hold `id`, `question` (a list of turns, each a list of chat messages;
the non-live categories have one turn) and `function` (BFCL's function docs, `{"name",
"description", "parameters": {"type": "dict", "properties", "required"}}` with BFCL's type
names `dict`, `float`, `tuple`, `any`), and `possible_answer/BFCL_v3_simple.json` rows hold the
same `id` and `ground_truth`, already the possible-answer form our `answer` field is. The
irrelevance category has no answer file: no call may be made. `qwqrl.eval_suites` joins the two
files by id into one row before this converter runs (`ground_truth` on the question row).

The record's `tools` are the function docs as OpenAI function schemas with BFCL's types written
as JSON-schema types (what BFCL shows OpenAI-style models; `any` is kept, and accepts any value
when judged); `answer` is `ground_truth` unchanged, or `[]` without one.
"""
from __future__ import annotations

import json
from typing import Any

from qwqrl.data.converters import register

# BFCL's names -> JSON schema's (its own GORILLA_TO_OPENAPI, for the Python categories).
_JSON_TYPES = {"dict": "object", "float": "number", "tuple": "array"}


def _json_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A BFCL parameter schema with JSON-schema type names, nested properties and items too."""
    out = dict(schema)
    if isinstance(out.get("type"), str):
        out["type"] = _JSON_TYPES.get(out["type"], out["type"])
    if isinstance(out.get("items"), dict):
        out["items"] = _json_schema(out["items"])
    if isinstance(out.get("properties"), dict):
        out["properties"] = {k: _json_schema(v) for k, v in out["properties"].items()}
    return out


def _decoded(value: Any) -> Any:
    """A column as published (a list) or as a `datasets` copy stores it (a JSON string)."""
    return json.loads(value) if isinstance(value, str) else value


@register("bfcl", fixture="bfcl.jsonl")
def bfcl(row: dict[str, Any]) -> dict[str, Any]:
    """BFCL non-live (simple, multiple, parallel, parallel_multiple, irrelevance): question +
    function docs (+ ground_truth joined from possible_answer/) -> a tool_call record."""
    turns = _decoded(row["question"])
    if not isinstance(turns, list) or len(turns) != 1 or not isinstance(turns[0], list):
        raise ValueError("`question` must hold exactly one turn (a list of chat messages); "
                         "multi-turn categories are not non-live AST ones")
    tools = [{"type": "function", "function": {**f, "parameters": _json_schema(f.get("parameters", {}))}}
             for f in _decoded(row["function"])]
    answer = _decoded(row.get("ground_truth", []))
    return {"id": row["id"], "task": "tool_call", "prompt": turns[0], "tools": tools,
            "answer": answer}

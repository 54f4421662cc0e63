"""Instruction-following sets in IFEval's format: a prompt, instruction ids, one kwargs each.

google/IFEval and argilla/ifeval-like-data (config `filtered`) both have `key`, `prompt`,
`instruction_id_list` and `kwargs`. On the hub, IFEval's kwargs are Arrow structs, so every
entry carries every instruction's argument names, the unused ones null; ifeval-like-data's
`kwargs` is a JSON string of the list. Records keep only the arguments given, as IFEval's own
evaluation reads them, so a record shows what each instruction checks.
"""
from __future__ import annotations

import json

from qwqrl.data.converters import Row, register


@register("ifeval", fixture="ifeval.jsonl")
def ifeval(row: Row) -> Row:
    """google/IFEval, argilla/ifeval-like-data: `prompt`, `instruction_id_list`, `kwargs`
    (struct list or JSON string) with null arguments dropped; `key` -> id."""
    kwargs = json.loads(row["kwargs"]) if isinstance(row["kwargs"], str) else row["kwargs"]
    if not isinstance(kwargs, list):
        raise ValueError(f"kwargs: expected a list of objects, found {type(kwargs).__name__}")
    record: Row = {
        "task": "ifeval", "prompt": row["prompt"],
        "instruction_id_list": list(row["instruction_id_list"]),
        "kwargs": [{k: v for k, v in (entry or {}).items() if v is not None} for entry in kwargs],
    }
    if row.get("key") is not None:
        record["id"] = row["key"]
    return record

"""Converters: reshape one row of a public dataset into a record of DESIGN.md's contract.

Most public sets do not fit the record contract as published: OpenR1-Math calls the prompt
`problem`, DeepCoder keeps its tests as a JSON string in LiveCodeBench's layout, HF's IFEval fills
every instruction's kwargs with the nulls of all the others. A data source names a converter
(`converter: openr1_math`) and `qwqrl.data.records` applies it to every row it loads.

A converter is a plain function `fn(row) -> record`, registered by name with the file of rows
(in the dataset's own schema, under `fixtures/`) it is tested on and that `qwqrl recipe check`
dry-runs it on. Adding one is one decorated function in a module here (one module per dataset
family) and, for a new module, one import line at the bottom of this file:

    @register("my_set", fixture="my_set.jsonl")
    def my_set(row: dict) -> dict:
        return {"task": "math", "prompt": row["question"], "answer": row["gold"]}

A row the converter reads but our verifiers cannot judge (an interactive problem, a custom output
checker) raises `SkipRow`: the loader drops it and reports how many it dropped and why. A row
that is malformed raises `ValueError`/`KeyError`/`TypeError`; the loader names the source and row.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

FIXTURES = Path(__file__).parent / "fixtures"

Row = dict[str, Any]


class SkipRow(Exception):
    """This row cannot become a record our verifiers judge fairly; the message is the reason
    (short and the same for every such row: the loader counts rows by reason)."""


@dataclass(frozen=True)
class Converter:
    name: str
    fn: Callable[[Row], Row]
    fixture: str  # file name under fixtures/: rows in the dataset's own schema
    doc: str

    def fixture_rows(self) -> list[Row]:
        return _read_fixture(self.fixture)


CONVERTERS: dict[str, Converter] = {}


def register(name: str, fixture: str) -> Callable[[Callable[[Row], Row]], Callable[[Row], Row]]:
    """Add `fn` to CONVERTERS under `name`; `fixture` names its rows under fixtures/."""
    def add(fn: Callable[[Row], Row]) -> Callable[[Row], Row]:
        if name in CONVERTERS:
            raise ValueError(f"converter {name!r} is registered twice")
        doc = (fn.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
        CONVERTERS[name] = Converter(name, fn, fixture, doc)
        return fn
    return add


def _read_fixture(file_name: str) -> list[Row]:
    path = FIXTURES / file_name
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()]


# One import per module; each registers its converters when imported.
from qwqrl.data.converters import bfcl, code, function_calling, general, ifeval, math  # noqa: E402,F401

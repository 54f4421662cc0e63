"""MERGE STAND-IN (branch `tools`): the subset of the converter registry that branch `data`
(issue 11) ships in this file, so `function_calling` registers against the same interface:
`CONVERTERS` (name -> Converter with `fn`, `fixture`, `fixture_rows()`), `register(name,
fixture=...)`, `SkipRow`, fixtures under `fixtures/`. At the merge keep `data`'s file and add
`function_calling` to its import line at the bottom.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

FIXTURES = Path(__file__).parent / "fixtures"

Row = dict[str, Any]


class SkipRow(Exception):
    """This row cannot become a record our verifiers judge fairly; the message is the reason."""


@dataclass(frozen=True)
class Converter:
    name: str
    fn: Callable[[Row], Row]
    fixture: str  # file name under fixtures/: rows in the dataset's own schema

    def fixture_rows(self) -> list[Row]:
        path = FIXTURES / self.fixture
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
                if line.strip()]


CONVERTERS: dict[str, Converter] = {}


def register(name: str, fixture: str) -> Callable[[Callable[[Row], Row]], Callable[[Row], Row]]:
    def add(fn: Callable[[Row], Row]) -> Callable[[Row], Row]:
        CONVERTERS[name] = Converter(name, fn, fixture)
        return fn
    return add


from qwqrl.data.converters import function_calling  # noqa: E402,F401

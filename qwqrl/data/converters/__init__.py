"""MERGE STAND-IN (branch `tools`): a minimal copy of the converter registry interface that the
data-loading work (issue 11) ships in this file, so `function_calling` can register against it.
At the merge keep that branch's version of this file and drop this one; the names used here are
its interface: `CONVERTERS`, `register(name, fixture=...)`, fixtures as package data under
`fixtures/<name>.jsonl`. A converter maps one dataset row to one record of the record contract,
or None for a row it cannot convert.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

Converter = Callable[[dict[str, Any]], "dict[str, Any] | None"]
FIXTURES = Path(__file__).parent / "fixtures"

CONVERTERS: dict[str, Converter] = {}
FIXTURE_FILES: dict[str, Path] = {}


def register(name: str, fixture: str) -> Callable[[Converter], Converter]:
    def add(fn: Converter) -> Converter:
        CONVERTERS[name] = fn
        FIXTURE_FILES[name] = FIXTURES / fixture
        return fn
    return add


importlib.import_module("qwqrl.data.converters.function_calling")

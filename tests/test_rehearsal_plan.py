"""The rehearsal's fault plan and step reading (`qwqrl.rehearsal.faults`); `make rehearsal` runs
the faults themselves against a live local cluster."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from qwqrl.rehearsal.faults import Fault, logged_steps, parse_plan


def test_a_plan_lists_kinds_at_steps_and_rejects_anything_else() -> None:
    assert parse_plan("sandbox@2, rm@5,node@8") == [Fault("sandbox", 2), Fault("rm", 5),
                                                    Fault("node", 8)]
    for bad in ("disk@3", "rm@0", "rm", "node@x"):
        with pytest.raises(ValueError, match="KIND@STEP"):
            parse_plan(bad)


def test_only_training_rows_count_as_steps(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    assert logged_steps(path) == 0  # not written yet
    rows = [{"step": 1, "timing/step_s": 1.0}, {"step": 2, "timing/step_s": 1.0},
            {"step": 9, "eval/pass_rate/math": 0.5}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"step": 3, "tim')  # torn tail
    assert logged_steps(path) == 2

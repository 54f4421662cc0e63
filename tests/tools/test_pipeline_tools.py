"""A recipe stage with `tools:` trains end to end through `qwqrl train`: the stage's generator is
wrapped in the tool loop (the python tool on a real local sandbox), and the step's metrics carry
the tool statistics."""
from __future__ import annotations

import json
from pathlib import Path

from qwqrl.cli import main
from tests.trainer.conftest import rl_recipe, write


def test_a_stage_with_tools_trains_and_logs_tool_metrics(tmp_path: Path) -> None:
    recipe = rl_recipe(tmp_path, steps=1)
    recipe["stages"][0]["tools"] = {"python": True, "functions": ["tests.tools.scripted:mul"],
                                    "max_turns": 2, "timeout_s": 5}
    assert main(["train", str(write(tmp_path, recipe))]) == 0
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    step = next(r for r in rows if "loss" in r)
    assert {"tools/calls_per_sample", "tools/used_frac", "tools/turns_mean"} <= set(step)
    assert 1.0 <= step["tools/turns_mean"] <= 2.0

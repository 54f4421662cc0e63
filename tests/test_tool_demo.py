"""The tool demo (`qwqrl demo --tools`): its recipe validates as written and with `--fast`'s
overrides, gives the RL stage and every evaluation the python tool, and trains on the products
task with a minority of tool traces in the cold start. With `--fast`, the whole path runs: cold
start, a GRPO step whose rollouts call the tool in the real sandbox, evaluations with the tool,
and the table shows `tool_use/math` next to `pass_rate/math`."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from qwqrl.config import RLStage
from qwqrl.demo import TOOLS_FAST, TOOLS_RECIPE
from qwqrl.recipe import load_recipe


def test_the_tool_demo_recipe_validates_and_offers_the_tool_where_it_is_measured() -> None:
    for overrides in ([], TOOLS_FAST):
        recipe = load_recipe(TOOLS_RECIPE, list(overrides))
        rl = [s for s in recipe.stages if isinstance(s, RLStage)]
        assert len(rl) == 1 and rl[0].tools is not None and rl[0].tools.python
        assert recipe.eval.tools is not None and recipe.eval.tools.python
        assert recipe.eval.tools.max_turns == rl[0].tools.max_turns
    cold = load_recipe(TOOLS_RECIPE).stages[0].data.train[0]
    assert cold.synthetic == "products" and 0 < cold.options["tool_share"] < 0.5


def test_fast_tool_demo_runs_and_reports_tool_use(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT",
                        "QWQRL_SANDBOX_URL")}
    env["OMP_NUM_THREADS"] = "1"
    out = subprocess.run([sys.executable, "-m", "qwqrl", "demo", "--tools", "--fast"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    run = tmp_path / "runs" / "demo-tools-fast"
    evals = json.loads((run / "evals.json").read_text())
    assert [e["stage"] for e in evals] == ["initial", "cold_start", "tool_rl"]
    for e in evals:
        assert {"pass_rate/math", "tool_use/math"} <= e["metrics"].keys()
        assert 0.0 <= e["metrics"]["tool_use/math"] <= 1.0
    assert "tool_use/math" in out.stdout and "after tool_rl" in out.stdout
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert any("tools/used_frac" in r for r in rows)

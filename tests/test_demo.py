"""The demo's whole path in miniature (`qwqrl demo --fast`): reward model, cold start, stage one
with code judged by a real local sandbox, stage two with the RM and IFEval, report and plots."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def test_fast_demo_runs_every_stage_and_writes_the_report(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT",
                        "QWQRL_SANDBOX_URL")}
    out = subprocess.run([sys.executable, "-m", "qwqrl", "demo", "--fast", "--wandb", "offline"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    run = tmp_path / "runs" / "demo-fast"
    progress = json.loads((run / "progress.json").read_text())
    assert list(progress["completed"]) == ["cold_start", "stage1", "stage2"]
    evals = json.loads((run / "evals.json").read_text())
    assert [e["stage"] for e in evals] == ["initial", "cold_start", "stage1", "stage2"]
    for e in evals:
        assert {"pass_rate/math", "pass_rate/code", "pass_rate/ifeval", "rm_score/general",
                "mean_length"} <= e["metrics"].keys()
    assert "after stage2" in out.stdout and "pass_rate/code" in out.stdout
    report = (run / "report.md").read_text()
    assert "stage2" in report
    for plot in ("rewards.png", "pass_rates.png", "length.png"):
        assert (run / "plots" / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert list((run / "wandb").glob("offline-run-*")), "wandb offline files"
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    rl = [r for r in rows if "timing/step_s" in r]
    assert {"rewards/math/mean", "rewards/code/mean"} <= set().union(*(r.keys() for r in rl[:3]))
    assert any("rewards/general/mean" in r or "rewards/ifeval/mean" in r for r in rl[3:])

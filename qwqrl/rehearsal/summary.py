"""The rehearsal's report: properties, faults with the time each cost, masked samples per cause,
and the held-out metrics of the faulted run next to the fault-free run's.

Time lost per fault: a sandbox or RM fault costs its step's extra wall time over the same step
of the fault-free run; a lost node costs the steps redone after the checkpoint (kill time minus
the checkpointed step's log time), the stop, and the resumed launch's start-up until its first
step began. Printed, and appended to the faulted run's `report.md` (which `qwqrl.report` wrote).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from qwqrl.rehearsal.checks import Result, event, journal

CAUSES = {"sandbox": "code", "rm": "general"}  # the reward each server's outage can mask


def fault_rows(clean: Any, faulted: Any, resumed: Any) -> list[str]:
    events = journal(faulted.cluster_dir)
    rows = []
    for kind, verifier in CAUSES.items():
        kill = event(events, kind, "kill")
        if kill is None:
            continue
        step = kill["step"]
        lost = _step_s(faulted.rows, step) - _step_s(clean.rows, step)
        masked = faulted.rows.get(step, {}).get(f"rewards/{verifier}/errors", 0)
        back = event(events, kind, "healthy")
        down = f"{back['t'] - kill['t']:.1f}s" if back else "never back"
        rows.append(f"| {kind} server SIGKILLed during step {step}, restarted | {down} | "
                    f"{masked:g} `{verifier}` | {lost:+.1f}s |")
    kill = event(events, "node", "kill")
    if kill is not None:
        rows.append(f"| trainer node 1 SIGKILLed during step {kill['step']} | - | 0 | "
                    f"{node_time_lost(faulted, resumed, kill):.1f}s |")
    return rows


def node_time_lost(faulted: Any, resumed: Any, kill: dict[str, Any]) -> float:
    redone = kill["t"] - faulted.rows.get(faulted.checkpoint_step, {}).get("time", kill["t"])
    stop = faulted.end - kill["t"]
    first = resumed.rows.get(min(resumed.rows)) if resumed.rows else None
    startup = (first["time"] - first["timing/step_s"] - resumed.start) if first else 0.0
    return redone + stop + startup


def _step_s(rows: dict[int, dict[str, Any]], step: int) -> float:
    return float(rows.get(step, {}).get("timing/step_s", 0.0))


def masked_rows(faulted: Any, resumed: Any) -> list[str]:
    """Masked samples per reward and step, over every step the faulted run logged."""
    rows = {**faulted.rows, **resumed.rows}
    out = []
    for step, row in sorted(rows.items()):
        for key, n in sorted(row.items()):
            if key.endswith("/errors") and n:
                out.append(f"| {step} | `{key.split('/')[1]}` | {n:g} |")
    return out or ["| - | - | 0 |"]


def held_out(clean: Any, faulted: Any) -> list[str]:
    a, b = _last_eval(clean.run_dir), _last_eval(faulted.run_dir)
    return [f"| {k} | {a.get(k, float('nan')):.4g} | {b.get(k, float('nan')):.4g} |"
            for k in sorted(set(a) | set(b))]


def _last_eval(run_dir: Path) -> dict[str, float]:
    path = run_dir / "evals.json"
    evals = json.loads(path.read_text()) if path.exists() else []
    return evals[-1]["metrics"] if evals else {}


def write_summary(results: list[Result], clean: Any, faulted: Any, resumed: Any,
                  plan: str) -> str:
    steps = (f"fault-free {len(clean.rows)} steps; faulted {len(faulted.rows)} steps before the "
             f"node was lost, then {len(resumed.rows)} redone by `--resume` from the checkpoint "
             f"at step {faulted.checkpoint_step}")
    lines = ["## Cluster rehearsal", "",
             f"Two trainer nodes (torchrun --nnodes 2, gloo), two sandbox replicas and an RM "
             f"server on 127.0.0.1; fault plan `{plan}`. Steps: {steps}.", "",
             "| property | holds | detail |", "|---|---|---|",
             *[f"| {r.name} | {'yes' if r.ok else '**NO**'} | {r.detail} |" for r in results], "",
             "| fault | server down | samples masked | time lost |", "|---|---|---|---|",
             *fault_rows(clean, faulted, resumed), "",
             "Masked samples per step (the faulted run, its resumed steps included):", "",
             "| step | reward | masked samples |", "|---|---|---|", *masked_rows(faulted, resumed), "",
             "Held-out metrics after stage two:", "",
             "| metric | fault-free | with faults |", "|---|---|---|", *held_out(clean, faulted), ""]
    text = "\n".join(lines)
    report = faulted.run_dir / "report.md"
    body = (report.read_text() + "\n" if report.exists() else "") + text
    tmp = report.with_name(report.name + ".tmp")
    tmp.write_text(body)
    os.replace(tmp, report)
    return text

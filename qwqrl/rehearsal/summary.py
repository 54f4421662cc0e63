"""The rehearsal's report: properties, faults with the time each cost, masked samples per cause,
and the held-out metrics of the faulted runs next to the fault-free run's.

Time lost per fault: a sandbox or RM fault costs its step's extra wall time over the same step
of the fault-free run, and the steps whose samples it masked (they learned from fewer samples,
or skipped their update when a rank had none left); a lost node costs the steps redone after the checkpoint (kill time minus
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


def fault_rows(runs: dict[str, Any]) -> list[str]:
    clean, services = runs["clean"], runs["services"]
    events = journal(services.cluster_dir)
    rows = []
    for kind, verifier in CAUSES.items():
        kill = event(events, kind, "kill")
        if kill is None:
            continue
        step = kill["running"]
        lost = _step_s(services.rows, step) - _step_s(clean.rows, step)
        hit = [r for r in services.rows.values() if r.get(f"rewards/{verifier}/errors")]
        masked = sum(r[f"rewards/{verifier}/errors"] for r in hit)
        back = event(events, kind, "healthy")
        down = f"{back['t'] - kill['t']:.1f}s" if back else "never back"
        rows.append(f"| {kind} server SIGKILLed during step {step}, restarted | {down} | "
                    f"{masked:g} `{verifier}` in {len(hit)} steps | step {step} {lost:+.1f}s vs "
                    f"fault-free; {sum(r['timing/step_s'] for r in hit):.1f}s in steps with "
                    f"masked samples |")
    kill = event(journal(runs["node"].cluster_dir), "node", "kill")
    if kill is not None:
        lost = node_time_lost(runs["node"], runs["resumed"], kill)
        rows.append(f"| trainer node 1 SIGKILLed during step {kill['running']} | - | 0 | "
                    f"{lost:.1f}s (redone steps, stop, restart) |")
    return rows


def node_time_lost(node: Any, resumed: Any, kill: dict[str, Any]) -> float:
    redone = kill["t"] - node.rows.get(node.checkpoint_step, {}).get("time", kill["t"])
    stop = node.end - kill["t"]
    first = resumed.rows.get(min(resumed.rows)) if resumed.rows else None
    startup = (first["time"] - first["timing/step_s"] - resumed.start) if first else 0.0
    return redone + stop + startup


def _step_s(rows: dict[int, dict[str, Any]], step: int) -> float:
    return float(rows.get(step, {}).get("timing/step_s", 0.0))


def masked_rows(services: Any) -> list[str]:
    """Masked samples per reward and step in the run with the services' faults."""
    out = []
    for step, row in sorted(services.rows.items()):
        for key, n in sorted(row.items()):
            if key.endswith("/errors") and n:
                out.append(f"| {step} | `{key.split('/')[1]}` | {n:g} |")
    return out or ["| - | - | 0 |"]


def held_out(runs: dict[str, Any]) -> list[str]:
    evals = [_last_eval(runs[k].run_dir) for k in ("clean", "services", "resumed")]
    keys = sorted(set().union(*evals))
    return ["| " + " | ".join([k, *(f"{e.get(k, float('nan')):.4g}" for e in evals)]) + " |"
            for k in keys]


def _last_eval(run_dir: Path) -> dict[str, float]:
    path = run_dir / "evals.json"
    evals = json.loads(path.read_text()) if path.exists() else []
    return evals[-1]["metrics"] if evals else {}


def write_summary(results: list[Result], runs: dict[str, Any], plan: str) -> str:
    steps = ", ".join(f"{name} {len(r.rows)} (exit {r.rc}, {r.end - r.start:.0f}s)"
                      for name, r in runs.items())
    lines = ["## Cluster rehearsal", "",
             f"Two trainer nodes (torchrun --nnodes 2, gloo), two sandbox replicas and an RM "
             f"server on 127.0.0.1; faults `{plan}`. Steps per launch: {steps}.", "",
             "| property | holds | detail |", "|---|---|---|",
             *[f"| {r.name} | {'yes' if r.ok else '**NO**'} | {r.detail} |" for r in results], "",
             "| fault | server down | samples masked | time lost |", "|---|---|---|---|",
             *fault_rows(runs), "",
             "Masked samples per step (the run with the services' faults; counts over ranks):", "",
             "| step | reward | masked samples |", "|---|---|---|", *masked_rows(runs["services"]), "",
             "Held-out metrics after stage two (the services run trained stage two longer):", "",
             "| metric | fault-free | services' faults | node lost + resumed |",
             "|---|---|---|---|", *held_out(runs), ""]
    text = "\n".join(lines)
    report = runs["services"].run_dir / "report.md"
    body = (report.read_text() + "\n" if report.exists() else "") + text
    tmp = report.with_name(report.name + ".tmp")
    tmp.write_text(body)
    os.replace(tmp, report)
    return text

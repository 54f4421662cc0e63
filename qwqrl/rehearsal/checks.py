"""What a rehearsal must show, judged from what its runs left on disk.

Each property is a `Result` (name, ok, detail); `judge` returns them all, so the report lists
every one and CI fails on any. Inputs: the runs' `metrics.jsonl` rows (the faulted run's read
before the resume rewrote its tail), the fault journal, exit statuses and times, the processes
seen under each launch, and the final weights.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file


@dataclass
class Result:
    name: str
    ok: bool
    detail: str


def journal(cluster_dir: Path) -> list[dict[str, Any]]:
    path = cluster_dir / "faults.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def event(events: list[dict[str, Any]], fault: str, action: str) -> dict[str, Any] | None:
    return next((e for e in events if e["fault"] == fault and e["action"] == action), None)


def step_rows(run_dir: Path) -> dict[int, dict[str, Any]]:
    """Training rows of metrics.jsonl by global step (evaluation rows are not steps)."""
    path = run_dir / "metrics.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    return {int(r["step"]): r for r in rows if "timing/step_s" in r}


def final_weights(run_dir: Path) -> dict[str, torch.Tensor] | None:
    path = run_dir / "checkpoints" / "stage2" / "final" / "model.safetensors"
    return load_file(str(path)) if path.exists() else None


def judge(runs: dict[str, Any], stage_steps: tuple[int, int],
          exit_bound_s: float) -> list[Result]:
    """Every property, over the launches `clean`, `services`, `node` and `resumed`."""
    clean, services, node, resumed = (runs[k] for k in ("clean", "services", "node", "resumed"))
    total = sum(stage_steps)
    results = [Result(f"{r.name}: nothing left running", not r.leftovers,
                      ", ".join(r.leftovers) or "every process of the launch exited")
               for r in runs.values()]
    results.append(Result("fault-free run finished", clean.rc == 0 and sorted(clean.rows) ==
                          list(range(1, total + 1)), f"exit {clean.rc}, steps {sorted(clean.rows)}"))
    events = journal(services.cluster_dir)
    results += sandbox_fault(clean.rows, services, events)
    results += rm_fault(services, events)
    results += node_fault(node, resumed, journal(node.cluster_dir), exit_bound_s)
    results.append(same_weights(clean.run_dir, resumed.run_dir))
    return results


def sandbox_fault(clean: dict, services: Any, events: list) -> list[Result]:
    kill, back = event(events, "sandbox", "kill"), event(events, "sandbox", "healthy")
    final = event(events, "sandbox", "final")
    if not (kill and back and final):
        return [Result("sandbox replica killed and restarted", False, f"journal: {events}")]
    step, rows = kill["running"], services.rows
    row, ref = rows.get(step, {}), clean.get(step, {})
    survivor = (back["evaluated"][1] or 0) - (kill["evaluated"][1] or 0)
    return [
        Result("sandbox kill: the other replica judged meanwhile", survivor > 0,
               f"{survivor:.0f} evaluations on the surviving replica while the other was down"),
        Result("sandbox kill: no sample masked or scored 0 for it",
               "rewards/code/errors" not in row and row.get("rewards/code/mean") is not None
               and row.get("rewards/code/mean") == ref.get("rewards/code/mean"),
               f"step {step}: code reward {row.get('rewards/code/mean')} (fault-free "
               f"{ref.get('rewards/code/mean')}), code errors {row.get('rewards/code/errors', 0)}"),
        Result("sandbox kill: the restarted replica is used again", (final["evaluated"][0] or 0) > 0,
               f"{final['evaluated'][0]} evaluations on the restarted replica"),
        Result("sandbox kill: training continued", services.rc == 0 and step + 1 in rows,
               f"exit {services.rc}, steps {min(rows, default=0)}-{max(rows, default=0)}"),
    ]


def rm_fault(services: Any, events: list) -> list[Result]:
    kill, back = event(events, "rm", "kill"), event(events, "rm", "healthy")
    if not (kill and back):
        return [Result("RM server killed and restarted", False, f"journal: {events}")]
    rows = services.rows
    down = rows.get(kill["running"], {})
    masked = down.get("rewards/general/errors", 0)
    after = [s for s, r in sorted(rows.items()) if r["time"] - r["timing/step_s"] > back["t"]]
    first = rows[after[0]] if after else {}
    return [
        Result("RM kill: unscorable samples masked and counted", masked > 0,
               f"step {kill['running']}: rewards/general/errors = {masked:g}"),
        Result("RM kill: scores resume after the restart",
               first.get("rewards/general/mean") is not None and "rewards/general/errors" not in first,
               f"first step begun after the RM was back: {after[0] if after else 'none'}, general "
               f"reward {first.get('rewards/general/mean')}, errors "
               f"{first.get('rewards/general/errors', 0)}"),
    ]


def node_fault(node: Any, resumed: Any, events: list, exit_bound_s: float) -> list[Result]:
    kill = event(events, "node", "kill")
    if not kill:
        return [Result("trainer node killed", False, f"journal: {events}")]
    stopped_s = node.end - kill["t"]
    return [
        Result("node kill: the run stops, in bounded time",
               node.rc not in (0, None) and stopped_s <= exit_bound_s,
               f"exit {node.rc} {stopped_s:.1f}s after the kill during step {kill['running']} "
               f"(bound {exit_bound_s:.0f}s)"),
        Result("node kill: --resume continues from the last checkpoint",
               resumed.rc == 0 and bool(resumed.rows) and node.checkpoint_step > 0
               and min(resumed.rows) == node.checkpoint_step + 1,
               f"checkpoint at step {node.checkpoint_step}; resumed run logged steps "
               f"{sorted(resumed.rows)}, exit {resumed.rc}"),
    ]


def same_weights(clean_dir: Path, faulted_dir: Path) -> Result:
    a, b = final_weights(clean_dir), final_weights(faulted_dir)
    if a is None or b is None or a.keys() != b.keys():
        return Result("final weights equal the fault-free run's", False, "final weights missing")
    diff = max((x.float() - b[k].float()).abs().max().item() for k, x in a.items())
    exact = all(torch.equal(x, b[k]) for k, x in a.items())
    return Result("final weights equal the fault-free run's (bit-exact)", exact,
                  f"{len(a)} tensors, max |difference| {diff:.3g}")

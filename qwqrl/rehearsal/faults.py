"""Faults injected into a running local cluster (launch/local-cluster.sh starts this module).

The plan is comma-separated KIND@STEP, STEP a global step as `metrics.jsonl` counts them. A fault
fires while step STEP runs, as soon as step STEP-1 is logged (so mid-step, before its rollouts
are scored), and what it killed comes back once step STEP is logged:

- `sandbox@N` SIGKILLs the first sandbox replica (with its workers), as a lost CPU node, and
  restarts it on the same port; the trainers' client must judge on the other replica meanwhile
  and take the restarted one back.
- `rm@N` SIGKILLs the reward-model server and restarts it: step N's general samples are masked.
- `node@N` SIGKILLs trainer node 1 (its torchrun agent and worker): the run must stop.

Every action is a JSON line in the journal (`t`, `fault`, `action`, `step` as planned, `running`:
the step that was running when it happened, `pid`, and for the sandbox the `/v1/evaluate`
requests each replica had answered), which `qwqrl rehearse` checks. A restart does not hold up
the other faults: the restarted server's /healthz is polled between ticks.
On SIGTERM (the script ends) it stops what it restarted, by PID, after a last count.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

from qwqrl.sandbox.local import stop_process_tree

KINDS = ("sandbox", "rm", "node")
POLL_S = 0.1


@dataclass
class Fault:
    kind: str
    step: int
    done: str = ""  # "", "killed", "restarted"


def parse_plan(plan: str) -> list[Fault]:
    """`sandbox@2,rm@7,node@9` -> faults; a clear error for anything else."""
    faults = []
    for item in filter(None, (p.strip() for p in plan.split(","))):
        kind, _, step = item.partition("@")
        if kind not in KINDS or not step.isdigit() or int(step) < 1:
            raise ValueError(f"fault plan item {item!r}: expected KIND@STEP with KIND one of "
                             f"{KINDS} and STEP a step number >= 1")
        faults.append(Fault(kind, int(step)))
    return faults


def logged_steps(metrics: Path) -> int:
    """The last training step in metrics.jsonl (rows with a step time; evals are not steps)."""
    last = 0
    with contextlib.suppress(FileNotFoundError):
        for line in metrics.read_text().splitlines():
            with contextlib.suppress(ValueError):
                row = json.loads(line)
                if "timing/step_s" in row:
                    last = max(last, int(row["step"]))
    return last


def kill_tree(pid: int) -> None:
    """SIGKILL `pid` and everything below it, as a machine that loses power would."""
    try:
        procs = [psutil.Process(pid)]
        procs += procs[0].children(recursive=True)
    except psutil.NoSuchProcess:
        return
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            p.kill()
    psutil.wait_procs(procs, timeout=10)


def evaluated(port: int) -> float | None:
    """The replica's answered /v1/evaluate count (its Prometheus counter); None if it is down."""
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2, trust_env=False).text
    except httpx.HTTPError:
        return None
    for line in text.splitlines():
        if line.startswith('qwqrl_sandbox_requests_total{endpoint="evaluate"}'):
            return float(line.split()[1])
    return 0.0


class Injector:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.faults = parse_plan(args.plan)
        self.pids = {"sandbox": args.sandbox_pid, "rm": args.rm_pid, "node": args.nodes[1]}
        self.restarted: dict[str, subprocess.Popen] = {}
        self.journal = Path(args.journal)
        self.step = 0  # the last step logged

    def record(self, **event: object) -> None:
        with self.journal.open("a") as f:
            f.write(json.dumps({"t": time.time(), "running": self.step + 1, **event}) + "\n")

    def tick(self) -> None:
        self.step = logged_steps(Path(self.args.metrics))
        for fault in self.faults:
            if not fault.done and self.step >= fault.step - 1:
                self.record(fault=fault.kind, action="kill", step=fault.step,
                            pid=self.pids[fault.kind], **self.counts(fault))
                kill_tree(self.pids[fault.kind])
                fault.done = "killed"
            elif fault.done == "killed" and fault.kind != "node" and self.step >= fault.step:
                self.restart(fault)
                fault.done = "restarting"
            elif fault.done == "restarting":
                self.check_back(fault)

    def counts(self, fault: Fault) -> dict[str, object]:
        if fault.kind != "sandbox":
            return {}
        ports = (self.args.sandbox_port, self.args.sandbox_port + 1)
        return {"evaluated": [evaluated(p) for p in ports]}

    def restart(self, fault: Fault) -> None:
        """Start the killed server again where it was (same port, same command)."""
        a = self.args
        if fault.kind == "sandbox":
            argv = ["qwqrl", "sandbox", "serve", "--host", "127.0.0.1", "--port", str(a.sandbox_port),
                    "--workers", os.environ.get("SANDBOX_WORKERS", "1"),
                    *os.environ.get("SANDBOX_ARGS", "").split()]
        else:
            argv = ["qwqrl", "rm", "serve", "--model", os.environ["RM_MODEL"],
                    "--host", "127.0.0.1", "--port", str(a.rm_port)]
        with open(Path(a.log_dir) / f"{fault.kind}-restarted.log", "ab") as log:
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        self.restarted[fault.kind] = proc
        self.record(fault=fault.kind, action="restart", step=fault.step, pid=proc.pid)

    def check_back(self, fault: Fault) -> None:
        """Journal the restarted server's first healthy answer (or its death)."""
        proc = self.restarted[fault.kind]
        port = self.args.sandbox_port if fault.kind == "sandbox" else self.args.rm_port
        if proc.poll() is not None:
            self.record(fault=fault.kind, action="restart_failed", step=fault.step, pid=proc.pid)
            fault.done = "restarted"
            return
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1,
                         trust_env=False).status_code == 200:
                self.record(fault=fault.kind, action="healthy", step=fault.step, pid=proc.pid,
                            **self.counts(fault))
                fault.done = "restarted"

    def stop(self) -> None:
        """A last count, then stop what this process restarted (SIGTERM, then SIGKILL)."""
        for fault in self.faults:
            if fault.kind == "sandbox" and fault.done == "restarted":
                self.record(fault="sandbox", action="final", step=fault.step, **self.counts(fault))
        for proc in self.restarted.values():
            stop_process_tree(proc, 20)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--plan", required=True, help="e.g. sandbox@2,rm@7,node@9")
    p.add_argument("--journal", required=True)
    p.add_argument("--metrics", required=True, help="the run's metrics.jsonl")
    p.add_argument("--nodes", type=int, nargs=2, required=True, help="torchrun PIDs of nodes 0, 1")
    p.add_argument("--sandbox-pid", type=int, required=True)
    p.add_argument("--sandbox-port", type=int, required=True)
    p.add_argument("--rm-pid", type=int, default=0)
    p.add_argument("--rm-port", type=int, default=0)
    p.add_argument("--log-dir", required=True)
    injector = Injector(p.parse_args(argv))
    stopping = False

    def on_term(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_term)
    try:
        while not stopping:
            injector.tick()
            time.sleep(POLL_S)
    finally:
        injector.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

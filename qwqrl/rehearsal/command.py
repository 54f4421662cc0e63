"""`qwqrl rehearse`: the cluster layout rehearsed end to end on this machine, faults included.

1. Once: the demo's tiny reward model and a short cold start (the demo's SFT stage, 100 steps).
2. `clean`: `launch/local-cluster.sh` (two trainer nodes, two sandbox replicas, the RM served;
   the server code train.slurm runs) trains the demo's stage one (3 steps) and stage two
   (6 steps, a checkpoint after its step 3), without faults: the reference.
3. `services`: the same with a sandbox replica SIGKILLed during step 2 and restarted, and the RM
   server SIGKILLed during step 5 and restarted (`qwqrl.rehearsal.faults`). Its stage two is
   longer (60 steps): an RM takes far longer to restart than a tiny step takes to run, and the
   steps after it is back must show scores again.
4. `node`: the clean run with trainer node 1 SIGKILLed during step 8, after the checkpoint at
   step 6; then `resumed`, a new rehearsal with `--resume`, which must finish it with the clean
   run's final weights, bit for bit (the services' faults mask samples, which changes the
   weights; that is why the node is lost in a run of its own).
5. `qwqrl.rehearsal.checks` judges what must hold; the report is printed and appended to the
   `services` run's `report.md`. Exit 1 when any property fails.

    qwqrl rehearse [--out runs/rehearsal] [--fresh]      (CI: make rehearsal)
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from qwqrl.sandbox.local import free_port

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "launch" / "local-cluster.sh"
RECIPE = ROOT / "recipes" / "demo" / "two-stage.yaml"
SERVICE_FAULTS = "sandbox@2,rm@5"
NODE_FAULT = "node@8"
STAGE_STEPS = (3, 6)          # stage one, stage two; stage two checkpoints after its step 3
# Stage two of the `services` run: an RM server takes 8-40 s to restart (imports; more on a busy
# machine) while a step whose samples are all masked takes ~1 s: 28 steps went by on 2 loaded
# cores. The steps after it is back must show scores again, so stage two outlasts it.
SERVICES_STAGE_TWO = 60
DIST_TIMEOUT_S = 60           # a collective with a dead peer fails after this
EXIT_BOUND_S = 180            # after a node is killed, everything must be gone within this
RUN_TIMEOUT_S = 1800
# 100 steps, mostly code: then 9 in 10 of the stage-one samples hold a fenced program within
# 96 tokens (after 40 steps of the demo's mixture: none), so the sandbox is busy every step.
COLD_START = ["stages.0.trainer.max_steps=100", "stages.0.trainer.warmup_steps=5",
              "stages.0.trainer.batch_size=32", "stages.0.trainer.micro_batch_size=32",
              "stages.0.data.train.2.weight=20",
              "stages.0.stop_at=null", "eval.sets=[]", "logging.wandb.mode=disabled"]
RL = [f"stages.1.trainer.max_steps={STAGE_STEPS[0]}", f"stages.2.trainer.max_steps={STAGE_STEPS[1]}",
      "stages.1.trainer.batch_size=2", "stages.2.trainer.batch_size=2",
      "stages.1.data.train.2.weight=8",  # most stage-one prompts are code: the sandbox is busy
      "stages.1.generation.max_new_tokens=96", "stages.2.generation.max_new_tokens=48",
      "stages.2.checkpoint.every=3", "stages.2.data.replay_previous=0",
      "stages.2.data.train.0.weight=0.05",  # stage two is mostly RM-judged: the RM is busy "eval.max_new_tokens=48", "eval.sets.0.options.n=8",
      "eval.sets.1.options.n=8", "eval.sets.2.options.n=4", "eval.sets.3.options.n=4",
      "logging.wandb.mode=disabled"]


@dataclass
class Launch:
    """One local-cluster.sh run: its exit status, times and every process it ever had."""
    name: str
    run_dir: Path
    cluster_dir: Path
    rc: int | None = None
    start: float = 0.0
    end: float = 0.0
    seen: dict[tuple[int, float], psutil.Process] = field(default_factory=dict)
    rows: dict[int, dict] = field(default_factory=dict)  # metrics.jsonl steps when it ended
    checkpoint_step: int = 0                              # the step progress.json points at
    leftovers: list[str] = field(default_factory=list)    # processes alive after it ended

    def left_running(self) -> list[psutil.Process]:
        alive = []
        for p in self.seen.values():
            try:
                if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                    alive.append(p)
            except psutil.NoSuchProcess:
                pass
        return alive


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("rehearse", help="rehearse the multi-node layout on this machine, with faults")
    p.add_argument("--out", default="runs/rehearsal", help="folder for everything (default: %(default)s)")
    p.add_argument("--fresh", action="store_true", help="delete --out first (keeps nothing)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from qwqrl.rehearsal.checks import judge
    from qwqrl.rehearsal.summary import write_summary

    out = Path(args.out).resolve()
    if args.fresh:
        shutil.rmtree(out, ignore_errors=True)
    for name in ("clean", "services", "node", "resumed"):  # the preparation is reused, runs not
        shutil.rmtree(out / name, ignore_errors=True)
        shutil.rmtree(out / f"{name}-cluster", ignore_errors=True)
    rm_model, cold = prepare(out)
    common = [f"stages.1.init_from={cold}", *RL]
    runs = {"clean": launch(out, "clean", common, rm_model)}
    runs["services"] = launch(out, "services", [*common, f"stages.2.trainer.max_steps="
                              f"{SERVICES_STAGE_TWO}"], rm_model, faults=SERVICE_FAULTS)
    runs["node"] = launch(out, "node", common, rm_model, faults=NODE_FAULT)
    runs["resumed"] = launch(out, "resumed", common, rm_model, run_dir=runs["node"].run_dir,
                             resume=True)
    results = judge(runs, STAGE_STEPS, EXIT_BOUND_S)
    text = write_summary(results, runs, f"{SERVICE_FAULTS} (services), {NODE_FAULT} (node)")
    print(text)
    failed = [r for r in results if not r.ok]
    print(f"rehearsal: {len(results) - len(failed)}/{len(results)} properties hold"
          + (f"; FAILED: {', '.join(r.name for r in failed)}" if failed else ""))
    return 1 if failed else 0


def prepare(out: Path) -> tuple[Path, Path]:
    """The demo's tiny RM and a short cold start, built once and kept in `out`."""
    from qwqrl.demo import build_reward_model

    rm_model, cold = out / "reward_model", out / "cold"
    out.mkdir(parents=True, exist_ok=True)
    if not (rm_model / "config.json").exists():
        build_reward_model(rm_model, seed=0, steps=10)
    final = cold / "checkpoints" / "cold_start" / "final"
    if not (final / "config.json").exists():
        shutil.rmtree(cold, ignore_errors=True)
        sets = [a for o in COLD_START for a in ("--set", o)]
        subprocess.run([sys.executable, "-m", "qwqrl", "train", str(RECIPE), "--stages", "1",
                        "--set", f"output_dir={cold}", *sets], env=quiet_env(), check=True,
                       cwd=out)
    return rm_model, final


def quiet_env() -> dict[str, str]:
    """This shell's environment without another launch's rendezvous variables, one thread each."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT",
                        "QWQRL_SANDBOX_URL")}
    return {**env, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}


def two_free_ports() -> int:
    """A port whose successor is free too (the two sandbox replicas)."""
    while True:
        port = free_port()
        if port < 65535 and port_free(port + 1):
            return port


def port_free(port: int) -> bool:
    import socket

    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def launch(out: Path, name: str, overrides: list[str], rm_model: Path, faults: str = "",
           run_dir: Path | None = None, resume: bool = False) -> Launch:
    """One `launch/local-cluster.sh` rehearsal, watched: every process of its tree is noted so
    that none may outlive it; with a node fault it must end within EXIT_BOUND_S of the kill."""
    run_dir = run_dir or out / name
    result = Launch(name, run_dir, out / f"{name}-cluster")
    env = {**quiet_env(), "CLUSTER_DIR": str(result.cluster_dir), "RM_MODEL": str(rm_model),
           "RDZV_PORT": str(free_port()), "SANDBOX_PORT": str(two_free_ports()),
           "RM_PORT": str(free_port()), "DIST_TIMEOUT_S": str(DIST_TIMEOUT_S),
           "QWQRL_VENV": str(Path(sys.executable).parent.parent)}
    if faults:
        env.update(FAULTS=faults, METRICS_FILE=str(run_dir / "metrics.jsonl"))
    sets = [a for o in [*overrides, f"output_dir={run_dir}"] for a in ("--set", o)]
    argv = ["bash", str(SCRIPT), str(RECIPE), "--stages", "2,3", *sets] + (["--resume"] if resume else [])
    print(f"rehearsal {name}{' with faults ' + faults if faults else ''}"
          f"{' (--resume)' if resume else ''}: logs in {result.cluster_dir}", flush=True)
    result.cluster_dir.mkdir(parents=True, exist_ok=True)
    result.start = time.time()
    with open(result.cluster_dir / "launcher.log", "w") as log:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    threading.Thread(target=watch, args=(proc, result), daemon=True).start()
    try:
        wait(proc, result)
    except BaseException:  # Ctrl-C / TERM of the rehearsal: the launch's traps stop its parts
        proc.terminate()
        proc.wait(60)
        raise
    result.end = time.time()
    print(f"rehearsal {name}: exit {result.rc} after {result.end - result.start:.0f}s", flush=True)
    finish(result)
    return result


def finish(result: Launch) -> None:
    """Read what the launch left (before a resume rewrites it); kill what outlived it (by PID:
    the checks report it as a failure, the machine is not left with it)."""
    from qwqrl.rehearsal.checks import step_rows

    # this launch's steps: a resumed run's folder also holds the steps logged before it
    result.rows = {s: r for s, r in step_rows(result.run_dir).items() if r["time"] >= result.start}
    progress = result.run_dir / "progress.json"
    current = json.loads(progress.read_text()).get("current") if progress.exists() else None
    if current:
        state = Path(current["checkpoint"]) / "trainer_state.json"
        result.checkpoint_step = json.loads(state.read_text())["global_step"]
    for p in result.left_running():
        with contextlib.suppress(psutil.NoSuchProcess):
            result.leftovers.append(f"{p.pid} {' '.join(p.cmdline()[:4])}")
            p.kill()


def watch(proc: subprocess.Popen, result: Launch) -> None:
    """Note every process below the launch while it runs."""
    while proc.poll() is None:
        try:
            tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        for p in tree:
            try:
                result.seen.setdefault((p.pid, p.create_time()), p)
            except psutil.NoSuchProcess:
                pass
        time.sleep(0.5)


def wait(proc: subprocess.Popen, result: Launch) -> None:
    """Wait for the launch; past its time limit it is ended (TERM: its traps stop the rest)."""
    from qwqrl.rehearsal.checks import journal

    deadline = time.time() + RUN_TIMEOUT_S
    while proc.poll() is None and time.time() < deadline:
        kill = next((e for e in journal(result.cluster_dir)
                     if e["fault"] == "node" and e["action"] == "kill"), None)
        if kill is not None:
            deadline = min(deadline, kill["t"] + EXIT_BOUND_S)
        time.sleep(0.5)
    if proc.poll() is None:
        print(f"rehearsal {result.name}: still running at its time limit; ending it", flush=True)
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
    result.rc = proc.wait()

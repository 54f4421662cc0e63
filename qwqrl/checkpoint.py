"""Checkpoints that survive a SIGKILL at any moment, and the run's progress record.

A step checkpoint `checkpoints/<stage>/step-N/` holds the DeepSpeed engine state (model,
optimizer, LR schedule), the critic's when PPO, `trainer_state.json` (stage, step, data sampler
position) and every rank's RNG states. It is written into `step-N.tmp/` and renamed when
complete, then `progress.json` (also replaced atomically) points at it; so a reader sees either
the old checkpoint or the new one, never half of one. `progress.json` also records each
finished stage's final HF weights, which the next stage starts from.
"""
from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from qwqrl.distributed import barrier


def write_json_atomic(path: Path, obj: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2))
    os.replace(tmp, path)


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class Progress:
    """`runs/<name>/progress.json`: finished stages and the latest step checkpoint."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / "progress.json"
        self.data: dict[str, Any] = (json.loads(self.path.read_text()) if self.path.exists()
                                     else {"completed": {}, "current": None})

    def stage_done(self, name: str) -> str | None:
        return self.data["completed"].get(name, {}).get("final")

    def mark_done(self, name: str, final: Path, global_step: int) -> None:
        self.data["completed"][name] = {"final": str(final), "global_step": global_step}
        self.data["current"] = None
        write_json_atomic(self.path, self.data)

    def latest(self, stage: str) -> Path | None:
        cur = self.data.get("current")
        if cur and cur["stage"] == stage and Path(cur["checkpoint"]).is_dir():
            return Path(cur["checkpoint"])
        return None

    def set_latest(self, stage: str, checkpoint: Path) -> None:
        self.data["current"] = {"stage": stage, "checkpoint": str(checkpoint)}
        write_json_atomic(self.path, self.data)


def save_step(stage_dir: Path, step: int, engines: dict[str, Any], state: dict[str, Any],
              progress: Progress, stage: str, keep: int, is_main: bool, rank: int) -> Path:
    """Write `stage_dir/step-N` atomically on every rank; rank 0 publishes and prunes."""
    final = stage_dir / f"step-{step:06d}"
    tmp = stage_dir / f"step-{step:06d}.tmp"
    if is_main:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    barrier()
    for name, engine in engines.items():
        engine.save_checkpoint(str(tmp), tag=name)
    torch.save(rng_state(), tmp / f"rng-rank{rank}.pt")
    if is_main:
        write_json_atomic(tmp / "trainer_state.json", state)
    barrier()
    if is_main:
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        progress.set_latest(stage, final)
        old = sorted(p for p in stage_dir.glob("step-*") if p.is_dir() and not p.name.endswith(".tmp"))
        for p in old[:-keep]:
            shutil.rmtree(p, ignore_errors=True)
    barrier()
    return final


def load_step(path: Path, engines: dict[str, Any], rank: int) -> dict[str, Any]:
    """Restore engines and this rank's RNG; returns the trainer state saved with them."""
    for name, engine in engines.items():
        loaded, _ = engine.load_checkpoint(str(path), tag=name, load_optimizer_states=True,
                                           load_lr_scheduler_states=True)
        if loaded is None:
            raise RuntimeError(f"could not load the {name} engine from {path}")
    rng_file = path / f"rng-rank{rank}.pt"
    if rng_file.exists():
        set_rng_state(torch.load(rng_file, weights_only=False))
    return json.loads((path / "trainer_state.json").read_text())

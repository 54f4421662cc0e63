"""Where a run's numbers go: `runs/<name>/metrics.jsonl` always, wandb when the recipe asks.

1. `metrics.jsonl` is the record of truth: one JSON object per `log` call (`step`, `time`, the
   metrics), flushed at once, so a crash loses at most the line being written. The report and
   any later analysis read it back with `read_metrics`, which needs no wandb.
2. wandb is a view of the same numbers. It never blocks or prompts: `offline` (the default)
   needs no account and writes under `runs/<name>/wandb/` (`wandb sync` uploads later);
   `online` without an API key falls back to offline with a warning; `disabled` imports nothing.
3. Sample completions with their rewards go to `samples/step-NNNNNN.jsonl` and a wandb Table.
4. Only the main process writes; other ranks get a Tracker that does nothing, so callers need
   no rank checks. Progress bars belong to the trainer.

A resumed run appends to the same files and continues the same wandb run (its id is kept in
`wandb/run-id`); the pipeline first drops the lines logged after the checkpoint it resumes from.
"""
from __future__ import annotations

import json
import logging
import netrc
import os
import secrets
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from qwqrl.config import LoggingConfig, WandbConfig

METRICS_FILE = "metrics.jsonl"
SAMPLES_DIR = "samples"

log = logging.getLogger("qwqrl.tracking")


class Tracker:
    """Append metrics and samples to the run directory and mirror them to wandb."""

    def __init__(self, run_dir: Path, cfg: LoggingConfig, recipe_dict: dict[str, Any],
                 is_main: bool = True):
        self.run_dir = Path(run_dir)
        # The trainer's cadence, from the recipe: log every N steps, samples every M.
        self.log_every, self.samples_every = cfg.log_every, cfg.samples_every
        self._file = None
        self._wandb = None
        if not is_main:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        path = self.run_dir / METRICS_FILE
        _drop_partial_last_line(path)
        self._file = path.open("a", encoding="utf-8")
        self._wandb = _start_wandb(self.run_dir, cfg.wandb, recipe_dict)

    def log(self, metrics: dict[str, float], step: int) -> None:
        """One line in metrics.jsonl (global `step`, wall-clock `time`, the metrics)."""
        if self._file is None:
            return
        record = {"step": int(step), "time": time.time(), **metrics}
        self._file.write(json.dumps(record, default=float) + "\n")
        self._file.flush()
        if self._wandb is not None:
            self._wandb.log(dict(metrics), step=int(step))

    def log_samples(self, rows: list[dict[str, Any]], step: int) -> None:
        """Completions with their rewards: `samples/step-{step:06d}.jsonl` and a wandb Table."""
        if self._file is None or not rows:
            return
        samples = self.run_dir / SAMPLES_DIR
        samples.mkdir(exist_ok=True)
        with (samples / f"step-{int(step):06d}.jsonl").open("a", encoding="utf-8") as f:
            f.writelines(json.dumps(row, default=str) + "\n" for row in rows)
        if self._wandb is not None:
            import wandb

            columns = list(dict.fromkeys(key for row in rows for key in row))
            data = [[_table_cell(row.get(c)) for c in columns] for row in rows]
            self._wandb.log({"samples": wandb.Table(columns=columns, data=data)}, step=int(step))

    def finish(self, exit_code: int = 0) -> None:
        """Close the metrics file and the wandb run; safe to call twice."""
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._wandb is not None:
            self._wandb.finish(exit_code=exit_code)
            self._wandb = None

    def __enter__(self) -> Tracker:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.finish(exit_code=0 if exc_type is None else 1)


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """The records of `run_dir/metrics.jsonl`, in order; [] before anything was logged.

    A last line cut short by a crash is skipped; a broken line elsewhere is an error.
    """
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    records: list[dict[str, Any]] = []
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as e:
            if lineno == len(lines):
                break
            raise ValueError(f"{path}:{lineno}: not valid JSON: {e.msg}") from None
    return records


# ------------------------------------------------------------------------------------- helpers


def _drop_partial_last_line(path: Path) -> None:
    """A crash mid-write leaves a line without its newline; appending to it would corrupt the
    next record too, so cut it before a resumed run appends."""
    if not path.is_file():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with path.open("r+b") as f:
            f.truncate(data.rfind(b"\n") + 1)


def _start_wandb(run_dir: Path, cfg: WandbConfig, recipe_dict: dict[str, Any]):
    """A wandb run under `run_dir/wandb`, or None when disabled. Never prompts for a login."""
    if cfg.mode == "disabled":
        return None
    mode = cfg.mode
    if mode == "online" and not _have_api_key():
        log.warning("wandb mode is online but no API key is set (WANDB_API_KEY or `wandb "
                    "login`); logging offline under %s instead; upload later with `wandb sync`.",
                    run_dir / "wandb")
        mode = "offline"
    os.environ.setdefault("WANDB_SILENT", "true")
    os.environ.setdefault("WANDB_DISABLE_GIT", "true")
    import wandb

    wandb_dir = run_dir / "wandb"
    wandb_dir.mkdir(exist_ok=True)
    return wandb.init(
        project=cfg.project, entity=cfg.entity, name=recipe_dict.get("name", run_dir.name),
        id=_run_id(wandb_dir), resume="allow", dir=str(run_dir), mode=mode, config=recipe_dict,
        settings=wandb.Settings(console="off", save_code=False, disable_git=True, silent=True,
                                disable_job_creation=True))


def _have_api_key() -> bool:
    """An API key from the environment or from `wandb login` (~/.netrc), found without wandb
    asking for one interactively."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname
    try:
        return netrc.netrc().authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def _run_id(wandb_dir: Path) -> str:
    """The same wandb run across resumes of one run directory."""
    path = wandb_dir / "run-id"
    if path.is_file():
        return path.read_text().strip()
    run_id = secrets.token_hex(4)  # wandb ids: short, lowercase alphanumeric
    path.write_text(run_id + "\n")
    return run_id


def _table_cell(value: Any) -> Any:
    """wandb Tables hold scalars; lists and dicts (chat prompts, details) become JSON text."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return json.dumps(value, default=str)

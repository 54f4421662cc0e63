"""`qwqrl score IN.jsonl -o OUT.jsonl`: score model outputs offline with the training verifiers.

1. Records of any mix of tasks are read in blocks of `--batch-size` lines; each block is split by
   verifier (the record's `task` decides, see `qwqrl.verifiers.registry`) and each part scored
   in one batch call, so math spreads over every core and code over every sandbox replica.
2. Every input line gives exactly one output line, in order: the input object plus `score`
   (in [0, 1], or null) and `detail`. A malformed line, an unknown task or a verifier failure
   gives `"score": null` and an `"error"`; the command goes on with the rest.
3. Code records run on `$QWQRL_SANDBOX_URL` (comma-separated replicas) if set, else on a local
   sandbox that is started at the first code record and stopped at the end.
4. The output is written to a temporary file beside OUT and renamed over it at the end, so OUT
   is either complete or untouched. A table per task (count, mean score, errors) closes the run.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from qwqrl.errors import UserError
from qwqrl.sandbox.isolation import add_allow_weak_argument, allow_weak_from_args
from qwqrl.verifiers.base import Verdict
from qwqrl.verifiers.registry import TASK_VERIFIERS, VERIFIERS, verify_batch

INVALID = "(invalid)"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("score", help="score model outputs (JSONL) with the verifiers")
    p.add_argument("input", help="JSONL records with `task`, `completion` and reference fields")
    p.add_argument("-o", "--output", required=True, help="where to write the scored JSONL")
    p.add_argument("--batch-size", type=int, default=256, help="lines scored per batch (256)")
    p.add_argument("--math-timeout", type=float, default=5.0,
                   help="wall-clock limit per math record, seconds (5)")
    p.add_argument("--no-think-opened", dest="think_opened", action="store_false",
                   help="the chat template did not open <think>: a completion without think "
                        "tags is judged whole (default: it is unfinished)")
    add_allow_weak_argument(p)
    p.set_defaults(func=run)


@dataclass
class Summary:
    count: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    scored: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, task: str, out: dict[str, Any]) -> None:
        self.count[task] += 1
        if out.get("score") is not None:
            self.scored[task].append(out["score"])
        if out.get("error"):
            self.errors[task] += 1

    def table(self) -> Table:
        table = Table(title="qwqrl score")
        for col in ("task", "count", "mean score", "errors"):
            table.add_column(col, justify="left" if col == "task" else "right")
        for task in sorted(self.count):
            s = self.scored[task]
            mean = f"{sum(s) / len(s):.4f}" if s else "-"
            table.add_row(task, str(self.count[task]), mean, str(self.errors[task]))
        return table


class SandboxProvider:
    """The code sandbox client, created at the first code record: the replicas in
    $QWQRL_SANDBOX_URL, else a LocalSandbox that lives until the command ends."""

    def __init__(self, stack: contextlib.ExitStack) -> None:
        self._stack = stack
        self._client: Any = None

    def client(self) -> Any:
        if self._client is None:
            from qwqrl.sandbox.client import SandboxClient

            if os.environ.get("QWQRL_SANDBOX_URL"):
                self._client = SandboxClient.from_env()
            else:
                from qwqrl.sandbox.local import LocalSandbox

                sandbox = self._stack.enter_context(LocalSandbox())
                self._client = SandboxClient([sandbox.url])
        return self._client


def _parse(line: str, number: int) -> tuple[dict[str, Any] | None, str | None]:
    """The record on a line, or None and what is wrong with it."""
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as e:
        return None, f"line {number}: not JSON ({e.msg} at column {e.colno})"
    if not isinstance(obj, dict):
        return None, f"line {number}: expected a JSON object, got {type(obj).__name__}"
    return obj, None


def _blocks(path: Path, size: int) -> Iterator[list[tuple[int, str]]]:
    block: list[tuple[int, str]] = []
    with path.open(encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            block.append((number, line))
            if len(block) == size:
                yield block
                block = []
    if block:
        yield block


def score_block(lines: list[tuple[int, str]], options: dict[str, dict[str, Any]],
                sandbox: SandboxProvider) -> list[tuple[str, dict[str, Any]]]:
    """(task, output object) for each line, in order."""
    outputs: list[tuple[str, dict[str, Any]]] = []
    groups: dict[str, list[int]] = defaultdict(list)
    for number, line in lines:
        obj, error = _parse(line, number)
        if obj is None:
            outputs.append((INVALID, {"line": number, "score": None, "error": error}))
            continue
        task = obj.get("task")
        outputs.append((str(task), obj))
        name = TASK_VERIFIERS.get(task) if isinstance(task, str) else None
        if name is None:
            obj.update(score=None, detail={}, error=f"unknown task {task!r}; known: "
                                                    f"{', '.join(sorted(TASK_VERIFIERS))}")
        elif name not in VERIFIERS:
            obj.update(score=None, detail={}, error=f"verifier {name!r} is not available")
        else:
            groups[name].append(len(outputs) - 1)
    for name, indices in groups.items():
        records = [outputs[i][1] for i in indices]
        try:
            extra = {"client": sandbox.client()} if name == "code" else {}
            verdicts = verify_batch(name, records, **options.get(name, {}), **extra)
            if len(verdicts) != len(records):
                raise RuntimeError(f"{len(verdicts)} verdicts for {len(records)} records")
        except UserError:  # e.g. the local sandbox refused weak isolation: the run stops
            raise
        except Exception as e:  # noqa: BLE001 -- a verifier failure nulls its records, never the run
            verdicts = [Verdict(None, {"verifier": name}, f"{type(e).__name__}: {e}")] * len(records)
        for record, v in zip(records, verdicts):
            record.pop("error", None)
            record.update(score=v.score, detail=v.detail)
            if v.error is not None:
                record["error"] = v.error
    return outputs


def _count_lines(path: Path) -> int:
    lines, last = 0, b"\n"
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            lines, last = lines + chunk.count(b"\n"), chunk[-1:]
    return lines + (last != b"\n")


def run(args: argparse.Namespace) -> int:
    src, dst = Path(args.input), Path(args.output)
    if not src.is_file():
        raise UserError(f"score: input file {src} does not exist")
    if not dst.parent.is_dir():
        raise UserError(f"score: output folder {dst.parent} does not exist")
    if args.batch_size < 1:
        raise UserError(f"score: --batch-size must be at least 1, got {args.batch_size}")
    allow_weak_from_args(args)
    options = {"math": {"timeout_s": args.math_timeout, "think_opened": args.think_opened},
               "code": {"think_opened": args.think_opened},
               "ifeval": {"think_opened": args.think_opened},
               "general": {"think_opened": args.think_opened},
               "tool_call": {"think_opened": args.think_opened}}
    total = _count_lines(src)
    console = Console(stderr=True)
    summary = Summary()
    fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out, contextlib.ExitStack() as stack, \
                Progress(TextColumn("scoring"), BarColumn(), MofNCompleteColumn(),
                         TimeRemainingColumn(), console=console) as progress:
            bar = progress.add_task("score", total=total)
            sandbox = SandboxProvider(stack)
            for block in _blocks(src, args.batch_size):
                for task, obj in score_block(block, options, sandbox):
                    out.write(json.dumps(obj, ensure_ascii=False) + "\n")
                    summary.add(task, obj)
                progress.advance(bar, len(block))
        os.replace(tmp, dst)
    except BaseException:
        os.unlink(tmp)
        raise
    console.print(summary.table())
    console.print(f"wrote {sum(summary.count.values())} lines to {dst}")
    return 0

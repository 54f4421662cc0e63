"""A progress bar with ETA for a training stage, showing the latest reward and loss."""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


@contextlib.contextmanager
def stage_progress(name: str, total: int, start: int = 0,
                   enabled: bool = True) -> Iterator[Callable[[int, dict[str, float]], None]]:
    """Yields `update(step, metrics)`; a no-op on non-main ranks."""
    if not enabled:
        yield lambda step, metrics: None
        return
    columns = [TextColumn(f"[bold]{name}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("eta"), TimeRemainingColumn(), TextColumn("{task.fields[info]}")]
    with Progress(*columns, transient=False) as bar:
        task = bar.add_task(name, total=total, completed=start, info="")

        def update(step: int, metrics: dict[str, float]) -> None:
            info = "  ".join(f"{k} {metrics[k]:.3f}" for k in ("reward", "loss") if k in metrics)
            bar.update(task, completed=step, info=info)

        yield update

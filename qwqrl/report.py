"""The run's report: `report.md` (evaluations per checkpoint) and `plots/*.png` (training curves).

1. The table has one row per evaluation, in order (the initial model, then after each stage),
   one column per metric (a benchmark suite's with `± stderr` when `stderr/<metric>` was
   logged), and under every row after the first a `change` row against the checkpoint before
   it; with three or more checkpoints a last row gives the total change.
2. Line plots come from `metrics.jsonl`: reward per verifier (`rewards/<verifier>/mean`),
   response length, loss and KL when logged; each marks where the logged `stage` changes,
   named after the stages of the run's `recipe.yaml`. Pass rates per checkpoint are grouped bars.
3. Every file is written under a temporary name and renamed into place, so a reader (or a crash)
   never finds half a report. Figures use matplotlib's Agg canvas directly: no GUI, no pyplot
   global state, safe inside the trainer process.
"""
from __future__ import annotations

import math
import os
import re
from functools import partial
from pathlib import Path
from typing import Any, Callable

import yaml
from matplotlib.figure import Figure

from qwqrl.tracking import read_metrics

MISSING = "-"
STDERR = "stderr/"  # `stderr/<metric>`: the metric's standard error, shown as `value ± stderr`

# (file stem, title, y label, metric pattern; a group in the pattern names the series)
LINE_PLOTS = (
    ("rewards", "Reward per verifier", "mean reward", re.compile(r"^rewards/(.+)/mean$")),
    ("length", "Response length", "tokens", re.compile(r"^completions/mean_length$")),
    ("loss", "Loss", "loss", re.compile(r"^loss$")),
    ("kl", "KL to the reference policy", "kl", re.compile(r"^kl$")),
)

Series = dict[str, tuple[list[float], list[float]]]


def write_report(run_dir: Path, evals: list[dict[str, Any]], title: str) -> Path:
    """Write `run_dir/report.md` and its plots; returns the report's path."""
    run_dir = Path(run_dir)
    plots_dir = run_dir / "plots"
    plots_dir.mkdir(parents=True, exist_ok=True)
    records = read_metrics(run_dir)
    boundaries = _stage_boundaries(records, _stage_names(run_dir))
    plots: list[tuple[str, Path]] = []
    for stem, plot_title, ylabel, pattern in LINE_PLOTS:
        series = _series(records, pattern)
        if series:
            path = plots_dir / f"{stem}.png"
            _write_atomic(path, partial(_plot_lines, title=plot_title, ylabel=ylabel,
                                        series=series, boundaries=boundaries))
            plots.append((plot_title, path))
    if any(key.startswith("pass_rate/") for ev in evals for key in ev["metrics"]):
        path = plots_dir / "pass_rates.png"
        _write_atomic(path, partial(_plot_pass_rates, evals=evals))
        plots.append(("Pass rate per checkpoint", path))

    lines = [f"# {title}", "", "## Evaluations", ""]
    if evals:
        header, rows = _grid(evals)
        lines += ["| " + " | ".join(header) + " |",
                  "|---" + "|---:" * (len(header) - 1) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
    else:
        lines.append("No evaluations were run.")
    lines += ["", "## Plots", ""]
    lines += [f"- {name}: ![{path.stem}](plots/{path.name})" for name, path in plots]
    if not plots:
        lines.append("No metrics were logged.")
    report = run_dir / "report.md"
    _write_atomic(report, lambda tmp: tmp.write_text("\n".join(lines) + "\n", encoding="utf-8"))
    return report


def format_table(evals: list[dict[str, Any]]) -> str:
    """The evaluation table as aligned plain text, for the terminal."""
    if not evals:
        return "no evaluations"
    header, rows = _grid(evals)
    table = [header] + rows
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]

    def line(row: list[str]) -> str:
        return "  ".join([row[0].ljust(widths[0])] +
                         [cell.rjust(w) for cell, w in zip(row[1:], widths[1:])])

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule] + [line(row) for row in rows])


# ------------------------------------------------------------------------------------- table


def _grid(evals: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of text cells: values per checkpoint, `change` rows between them."""
    metrics = list(dict.fromkeys(key for ev in evals for key in ev["metrics"]
                                 if not key.startswith(STDERR)))
    fmt = {m: _format_for([ev["metrics"].get(m) for ev in evals]) for m in metrics}

    def values(ev: dict[str, Any]) -> list[str]:
        cells = []
        for m in metrics:
            cell, stderr = _cell(fmt[m], ev["metrics"].get(m)), ev["metrics"].get(STDERR + m)
            cells.append(cell if stderr is None else f"{cell} ± {stderr:{fmt[m]}}")
        return cells

    def changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
        out = []
        for m in metrics:
            a, b = before["metrics"].get(m), after["metrics"].get(m)
            out.append(_cell("+" + fmt[m], None if a is None or b is None else b - a))
        return out

    rows = []
    for i, ev in enumerate(evals):
        rows.append([_checkpoint(ev)] + values(ev))
        if i > 0:
            rows.append(["  change"] + changes(evals[i - 1], ev))
    if len(evals) >= 3:
        first, last = evals[0], evals[-1]
        rows.append([f"total change ({_checkpoint(first)} -> {_checkpoint(last)})"] +
                    changes(first, last))
    return ["checkpoint"] + metrics, rows


def _checkpoint(ev: dict[str, Any]) -> str:
    """`initial`, else `after <stage>` (`when` defaults to after: stages end in an evaluation)."""
    if ev["stage"] == "initial":
        return "initial"
    return f"{ev.get('when', 'after')} {ev['stage']}"


def _format_for(values: list[float | None]) -> str:
    """One format per column: three decimals for rates and scores, one for lengths and the like."""
    large = any(v is not None and abs(v) >= 100 for v in values)
    return ".1f" if large else ".3f"


def _cell(fmt: str, value: float | None) -> str:
    return MISSING if value is None else format(value, fmt)


# ------------------------------------------------------------------------------------- plots


def _stage_names(run_dir: Path) -> list[str]:
    """Stage names from the run's resolved recipe, to label the logged stage indices."""
    path = run_dir / "recipe.yaml"
    if not path.is_file():
        return []
    recipe = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return [stage.get("name", "") for stage in recipe.get("stages", [])]


def _stage_boundaries(records: list[dict[str, Any]], names: list[str]) -> list[tuple[float, str]]:
    """(first step, label) of every stretch of steps with one `stage` value."""
    out: list[tuple[float, str]] = []
    current = None
    for record in records:
        stage = record.get("stage")
        if stage is None or stage == current:
            continue
        current = stage
        if isinstance(stage, str):
            label = stage
        else:
            index = int(stage)
            label = names[index] if 0 <= index < len(names) else f"stage {index}"
        out.append((record["step"], label))
    return out


def _series(records: list[dict[str, Any]], pattern: re.Pattern[str]) -> Series:
    """Metric values per step for every key matching `pattern`, NaNs left out."""
    series: Series = {}
    for record in records:
        for key, value in record.items():
            match = pattern.match(key)
            if match is None or not isinstance(value, (int, float)) or math.isnan(value):
                continue
            steps, values = series.setdefault(match.group(1) if match.groups() else key, ([], []))
            steps.append(record["step"])
            values.append(value)
    return series


def _plot_lines(path: Path, title: str, ylabel: str, series: Series,
                boundaries: list[tuple[float, str]]) -> None:
    fig = Figure(figsize=(8, 4.5), layout="constrained")
    ax = fig.add_subplot()
    marker = "." if max(len(steps) for steps, _ in series.values()) < 30 else None  # short runs
    for name, (steps, values) in sorted(series.items()):
        ax.plot(steps, values, label=name, linewidth=1.2, marker=marker)
    for step, label in boundaries:
        ax.axvline(step, color="grey", linestyle="--", linewidth=0.8)
        ax.annotate(label, (step, 1.0), xycoords=("data", "axes fraction"), xytext=(3, -12),
                    textcoords="offset points", fontsize=8, color="dimgrey")
    ax.set(title=title, xlabel="step", ylabel=ylabel)
    ax.grid(alpha=0.3)
    if len(series) > 1:
        ax.legend(fontsize=8)
    fig.savefig(path, format="png", dpi=100)


def _plot_pass_rates(path: Path, evals: list[dict[str, Any]]) -> None:
    """Groups are tasks, one bar per checkpoint, so each task's progress reads left to right."""
    tasks = list(dict.fromkeys(k for ev in evals for k in ev["metrics"] if k.startswith("pass_rate/")))
    width = 0.8 / len(evals)
    fig = Figure(figsize=(max(6.0, 1.5 * len(tasks) * len(evals) ** 0.5), 4.5), layout="constrained")
    ax = fig.add_subplot()
    for i, ev in enumerate(evals):
        xs = [t + (i - (len(evals) - 1) / 2) * width for t in range(len(tasks))]
        ax.bar(xs, [ev["metrics"].get(task, math.nan) for task in tasks], width, label=_checkpoint(ev))
    ax.set_xticks(range(len(tasks)), [task.removeprefix("pass_rate/") for task in tasks])
    ax.set(title="Pass rate per checkpoint", ylabel="pass rate", ylim=(0, 1))
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.savefig(path, format="png", dpi=100)


def _write_atomic(path: Path, write: Callable[[Path], Any]) -> None:
    """`write(tmp)` then rename over `path`; the hidden temporary never survives a failure."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)

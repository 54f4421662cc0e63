"""What `qwqrl eval` leaves behind: a table on stdout, `eval.json`, per-sample JSONL, and for
IFEval the official script's report and files.

1. The table has the QwQ blog's layout: one row per (benchmark, metric), the value in percent,
   its standard error over problems, the k it is estimated from, and the samples judged; then
   the overall numbers over several suites (`eval_suites.OVERALLS`, e.g. BFCL non-live).
2. `eval.json` holds every metric flat under `<suite>/<metric>` (fractions), `stderr` by the
   same keys, per suite its source, sampling, counts and exclusions, and the run's settings.
3. `samples.jsonl`: one line per sample (suite, id, sample, completion, verdict, score, detail,
   error, tokens, finish_reason); `verdict` is the pass/fail judgement (null where none).
4. IFEval suites also print google-research's `evaluation_main` report, to the character, and
   write its `eval_results_strict.jsonl` / `eval_results_loose.jsonl`.
Every file is written under a temporary name and renamed into place.
"""
from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from qwqrl.eval_metrics import ifeval_report
from qwqrl.eval_suites import OVERALLS, overall_metrics
from qwqrl.evaluation import SuiteResult, correct

HEADER = ("benchmark", "metric", "value", "± stderr", "k", "samples")


def table(results: list[SuiteResult]) -> str:
    """The results as aligned plain text; rates in percent, the RM score as is."""
    rows = [HEADER]
    for res in results:
        for row in res.rows:
            scale = 1.0 if row.metric == "rm_score" else 100.0
            rows.append((res.data.suite.title, row.metric, f"{row.value * scale:.1f}",
                         "" if row.stderr is None else f"± {row.stderr * scale:.1f}",
                         str(row.k), str(res.judged)))
        if not res.rows:
            rows.append((res.data.suite.title, "(nothing judged)", "-", "", "", "0"))
    overall = overall_metrics({k: v for res in results for k, v in res.metrics().items()})
    for o in OVERALLS:  # a mean over benchmarks has no standard error over problems of its own
        if f"{o.name}/overall" in overall:
            rows.append((o.title, "overall", f"{overall[f'{o.name}/overall'] * 100:.1f}", "", "", ""))
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER))]
    lines = ["  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
             for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def eval_json(results: list[SuiteResult], settings: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    stderr: dict[str, float] = {}
    for res in results:
        for key, value in res.metrics().items():
            if key.startswith("stderr/"):
                stderr[key[len("stderr/"):]] = value
            else:
                out[key] = value
    out.update(overall_metrics(out))
    suite = {res.name: {
        "benchmark": res.data.suite.title, "task": res.data.suite.task, "source": res.data.source,
        "converter": res.data.suite.converter, "problems": len(res.data.records),
        "samples_per_problem": res.data.suite.samples, "judged": res.judged,
        "unjudged": res.unjudged, "excluded": res.data.excluded,
        "date_window": list(res.data.suite.date_window),
        "sampling": asdict(res.data.suite.sampling), **res.extra,
    } for res in results}
    return {**out, "stderr": stderr, "suites": suite, "settings": settings}


def sample_lines(results: list[SuiteResult]) -> Iterable[str]:
    for res in results:
        for c, v in zip(res.completions, res.verdicts):
            line = {"suite": res.name, "id": res.data.records[c.problem]["id"], "sample": c.sample,
                    "completion": c.text, "verdict": correct(res.data.suite.task, v),
                    "score": v.score, "detail": v.detail, "error": v.error, "tokens": c.tokens,
                    "finish_reason": c.finish_reason}
            yield json.dumps(line, ensure_ascii=False) + "\n"


def ifeval_outputs(res: SuiteResult, mode: str) -> tuple[list[list[str]], list[list[bool]], list[str]]:
    """(instruction ids, followed, official output lines) of the judged responses."""
    key = "followed" if mode == "strict" else "followed_loose"
    ids, followed, lines = [], [], []
    for c, v in zip(res.completions, res.verdicts):
        if v.score is None:
            continue
        record = res.data.records[c.problem]
        ids.append(list(record["instruction_id_list"]))
        followed.append(list(v.detail[key]))
        # evaluation_lib.write_outputs: the OutputExample's public fields in dir() order
        lines.append(json.dumps({"follow_all_instructions": all(v.detail[key]),
                                 "follow_instruction_list": followed[-1],
                                 "instruction_id_list": ids[-1], "prompt": record["prompt"],
                                 "response": c.text}) + "\n")
    return ids, followed, lines


def official_ifeval(res: SuiteResult, output_dir: str | None, prefix: str = "") -> str:
    """evaluation_main's printout for this suite; writes its two files when there is a folder."""
    parts = []
    for mode in ("strict", "loose"):
        name = os.path.join(output_dir or "", f"{prefix}eval_results_{mode}.jsonl")
        ids, followed, lines = ifeval_outputs(res, mode)
        if not lines:
            continue
        if output_dir is not None:
            write_atomic(Path(name), lines)
        parts += ["=" * 64, f"{name} Accuracy Scores:", ifeval_report(ids, followed)]
    return "\n".join(parts)


def write_atomic(path: Path, chunks: Iterable[str]) -> None:
    """Write `chunks` to a temporary file beside `path`, then rename it over `path`."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for chunk in chunks:
                f.write(chunk)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise

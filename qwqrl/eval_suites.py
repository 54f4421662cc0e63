"""Benchmarks as named data: `qwqrl eval CKPT --suite aime24,ifeval` and a recipe's `eval.suites`.

A suite is four things, all in `SUITES` below:
1. where its problems come from: a default source (a hub dataset id and split) and the name of the
   converter in `qwqrl.data.converters` that turns one row of it into a record of DESIGN.md's
   contract (`--data FILE` replaces the source with a local copy in the same schema);
2. the task whose verifier judges it (math, code, ifeval, general);
3. how to sample: QwQ's settings (temperature 0.6, top_p 0.95, top_k 20, up to 32,768 new tokens)
   and k samples per problem;
4. its metrics, fixed by the task (`qwqrl.eval_metrics`): avg@k and pass@k for math, pass@1
   averaged over k for code, IFEval's four accuracies, the mean RM score for general prompts.

Code suites take a contest-date window (records' `contest_date`, ISO dates, from inclusive, to
exclusive) so problems published before a model's cut-off can be left out, as LiveCodeBench does.
The `tiny-*` suites are CPU-sized variants on the built-in synthetic data, for the demo and tests.

BFCL's non-live AST categories (`bfcl-simple`, ..., or all five as `bfcl`) read BFCL's own files
(`--data`, or `eval.suite_data` in a recipe): BFCL keeps answers in `possible_answer/<same name>`
beside the questions, and `load_suite` joins them by id (`Suite.answers`). BFCL's non-live
overall is an `Overall`: the unweighted mean of its categories' accuracies, as BFCL's
`eval_runner_helper` computes it (irrelevance is not part of it; BFCL reports it apart, as
hallucination).

Adding a suite: register its converter in `qwqrl.data.converters` (with fixture rows), then add
one `Suite(...)` entry here; docs/evaluation.md walks through it.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from qwqrl.config import DataSource
from qwqrl.errors import UserError
from qwqrl.generation.base import SamplingParams

# QwQ-32B's usage guide: temperature 0.6, top_p 0.95, top_k 20-40; 32,768 tokens to think.
QWQ_SAMPLING = SamplingParams(max_new_tokens=32768, temperature=0.6, top_p=0.95, top_k=20)
# The tiny demo model answers in well under 128 tokens.
TINY_SAMPLING = replace(QWQ_SAMPLING, max_new_tokens=128)


@dataclass(frozen=True)
class Suite:
    name: str
    title: str                       # the benchmark as the QwQ table names it
    task: str                        # the verifier that judges it, and so its metrics
    source: dict[str, Any] | None    # DataSource fields of the default source; None: needs --data
    converter: str | None            # name in qwqrl.data.converters.CONVERTERS; None: rows are records
    samples: int                     # k samples per problem
    sampling: SamplingParams = QWQ_SAMPLING
    date_window: tuple[str | None, str | None] = (None, None)  # code: contest_date in [from, to)
    cpu: bool = False                # small enough for a CPU run with a tiny model
    notes: str = ""
    answers: str | None = None       # folder beside the data file with its answers (BFCL's layout)

    def with_overrides(self, samples: int | None = None, date_from: str | None = None,
                       date_to: str | None = None, **sampling: Any) -> Suite:
        """This suite with the given settings replaced (None keeps the suite's own; an empty
        date clears that end of the window)."""
        changed = {k: v for k, v in sampling.items() if v is not None}
        window = tuple(own if given is None else (given or None)  # "" clears a bound
                       for given, own in zip((date_from, date_to), self.date_window))
        return replace(self, samples=samples or self.samples, date_window=window,
                       sampling=replace(self.sampling, **changed))


SUITES: dict[str, Suite] = {s.name: s for s in [
    Suite("aime24", "AIME24", "math",
          {"hub": "HuggingFaceH4/aime_2024", "options": {"split": "train"}}, "aime", samples=64,
          notes="30 problems; the QwQ table's AIME24 (79.5) is avg@k"),
    Suite("aime25", "AIME25", "math",
          {"hub": "yentinglin/aime_2025", "options": {"split": "train"}}, "aime", samples=64,
          notes="30 problems (I and II)"),
    Suite("math500", "MATH-500", "math",
          {"hub": "HuggingFaceH4/MATH-500", "options": {"split": "test"}}, "math500", samples=4),
    Suite("livecodebench", "LiveCodeBench", "code",
          {"hub": "livecodebench/code_generation_lite",
           "options": {"split": "test", "version_tag": "release_v5"}},
          "livecodebench", samples=8, date_window=("2024-08-01", "2025-02-01"),
          notes="problems dated 2024-08-01..2025-01-31 (QwQ's window); --since/--until move it"),
    Suite("livecodebench-deepcoder", "LiveCodeBench (DeepCoder)", "code",
          {"hub": "agentica-org/DeepCoder-Preview-Dataset", "options": {"name": "lcbv5", "split": "test"}},
          "deepcoder", samples=8,
          notes="DeepCoder's LiveCodeBench v5 test split, already cut to 2024-08..2025-02; "
                "its rows carry no dates, so no window applies"),
    Suite("ifeval", "IFEval", "ifeval",
          {"hub": "google/IFEval", "options": {"split": "train"}}, "ifeval", samples=1,
          notes="541 prompts; google-research's input_data.jsonl is the same schema"),
    Suite("general", "General (RM)", "general", None, None, samples=1,
          notes="your own prompts (--data); scored by the reward model given with --rm"),
    *[Suite(f"bfcl-{name.replace('_', '-')}", f"BFCL {name}", "tool_call", None, "bfcl",
            samples=1, answers=None if name == "irrelevance" else "possible_answer",
            notes=f"BFCL's own {file} (--data); answers from possible_answer/{file} beside it")
      for name, file in [("simple", "BFCL_v3_simple.json"), ("multiple", "BFCL_v3_multiple.json"),
                         ("parallel", "BFCL_v3_parallel.json"),
                         ("parallel_multiple", "BFCL_v3_parallel_multiple.json"),
                         ("irrelevance", "BFCL_v3_irrelevance.json")]],
    Suite("tiny-math", "tiny math", "math",
          {"synthetic": "arithmetic", "options": {"n": 16, "seed": 9, "split": "test"}}, None,
          samples=4, sampling=TINY_SAMPLING, cpu=True),
    Suite("tiny-code", "tiny code", "code",
          {"synthetic": "code", "options": {"n": 8, "seed": 9, "split": "test"}}, None,
          samples=2, sampling=TINY_SAMPLING, cpu=True),
    Suite("tiny-ifeval", "tiny IFEval", "ifeval",
          {"synthetic": "ifeval", "options": {"n": 8, "seed": 9, "max_instructions": 1}}, None,
          samples=2, sampling=TINY_SAMPLING, cpu=True),
    Suite("tiny-general", "tiny general (RM)", "general",
          {"synthetic": "general", "options": {"n": 8, "seed": 9}}, None,
          samples=2, sampling=TINY_SAMPLING, cpu=True),
]}


# Names that stand for several suites.
GROUPS: dict[str, list[str]] = {"bfcl": [n for n in SUITES if n.startswith("bfcl-")]}


@dataclass(frozen=True)
class Overall:
    """A benchmark's headline number over several suites: the unweighted mean of each suite's
    accuracy (its avg@k), reported only when every one of them was judged."""
    name: str
    title: str
    parts: tuple[str, ...]


OVERALLS = [Overall("bfcl-non-live", "BFCL non-live (AST)",
                    ("bfcl-simple", "bfcl-multiple", "bfcl-parallel", "bfcl-parallel-multiple"))]


def get_suites(names: list[str] | str, where: str = "--suite") -> list[Suite]:
    """Suites by name (a list, or one comma-separated string; a group name brings its suites);
    unknown names are a UserError with a did-you-mean."""
    if isinstance(names, str):
        names = [n for n in names.split(",") if n.strip()]
    out = []
    for name in (n.strip() for n in names):
        if name in GROUPS:
            out.extend(SUITES[n] for n in GROUPS[name])
            continue
        if name not in SUITES:
            hint = difflib.get_close_matches(name, [*SUITES, *GROUPS], n=1)
            raise UserError(f"{where}: unknown suite {name!r}" +
                            (f" (did you mean {hint[0]!r}?)" if hint else "") +
                            f"; known: {', '.join([*SUITES, *GROUPS])}")
        out.append(SUITES[name])
    return out


def overall_metrics(metrics: dict[str, float]) -> dict[str, float]:
    """`<overall>/overall` for each Overall whose parts all have an `avg@k` in `metrics` (flat
    `<suite>/<metric>` keys, as `SuiteResult.metrics` gives them)."""
    out = {}
    for overall in OVERALLS:
        parts = [next((v for k, v in metrics.items() if k.startswith(f"{p}/avg@")), None)
                 for p in overall.parts]
        if all(v is not None for v in parts):
            out[f"{overall.name}/overall"] = sum(parts) / len(parts)
    return out


@dataclass
class SuiteData:
    """A suite and its problems, as records of the contract."""
    suite: Suite
    records: list[dict[str, Any]]
    source: str
    excluded: dict[str, int] = field(default_factory=dict)  # reason -> problems left out


def load_suite(suite: Suite, base: Path, data: str | None = None,
               limit: int | None = None) -> SuiteData:
    """The suite's records from `data` (a local file in the source's schema) or its default
    source, converted, validated, and filtered to its date window."""
    from qwqrl.data.records import load_source

    if data is not None:
        fields: dict[str, Any] = {"path": _with_answers(suite, data, base) if suite.answers else data}
    elif suite.source is not None:
        fields = dict(suite.source)
    else:
        raise UserError(f"suite {suite.name!r} has no default data: give it with --data FILE")
    if suite.converter is not None:
        fields["converter"] = suite.converter
    fields["task"] = suite.task
    src = DataSource(**fields, limit=limit)
    shown = data or src.hub or src.synthetic or ""
    try:
        records, excluded = _in_window(suite, load_source(src, base))
    finally:
        if data is not None and suite.answers:
            Path(fields["path"]).unlink()  # the joined copy
    if not records:
        raise UserError(f"suite {suite.name!r}: no problems left from {shown}" +
                        (f" ({excluded})" if excluded else ""))
    return SuiteData(suite, records, str(shown), excluded)


def _with_answers(suite: Suite, data_file: str, base: Path) -> str:
    """A temporary JSONL copy of `data` whose rows carry `ground_truth` from the answers file of
    the same name in `suite.answers` beside it (BFCL's layout), joined by `id`."""
    import json
    import tempfile

    from qwqrl.data.records import read_json_lines, resolve_data_path

    data = resolve_data_path(data_file, base)
    if data is None:
        raise UserError(f"suite {suite.name!r}: {data_file}: file not found")
    answers_file = data.parent / suite.answers / data.name
    if not answers_file.is_file():
        raise UserError(f"suite {suite.name!r}: its answers are read from {answers_file} (BFCL "
                        f"keeps them in {suite.answers}/ beside the questions), which does not exist")
    answers = {row["id"]: row["ground_truth"] for row in read_json_lines(answers_file)}
    rows = read_json_lines(data)
    missing = [row["id"] for row in rows if row["id"] not in answers]
    if missing:
        raise UserError(f"suite {suite.name!r}: {answers_file} has no answer for id "
                        f"{missing[0]!r} ({len(missing)} questions without one)")
    out = tempfile.NamedTemporaryFile("w", suffix=".jsonl", prefix="qwqrl-joined-", delete=False)
    with out:
        for row in rows:
            out.write(json.dumps({**row, "ground_truth": answers[row["id"]]}) + "\n")
    return out.name


def _in_window(suite: Suite, records: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, int]]:
    start, end = suite.date_window
    if start is None and end is None:
        return records, {}
    kept, excluded = [], {}
    for r in records:
        date = r.get("contest_date")
        if not isinstance(date, str) or not date:
            raise UserError(f"suite {suite.name!r}: record {r.get('id')!r} has no `contest_date`, "
                            f"so the date window {start}..{end} cannot be applied "
                            f"(pass --since '' --until '' to evaluate every problem)")
        day = date[:10]
        if (start and day < start) or (end and day >= end):
            reason = f"contest_date outside {start or '...'}..{end or '...'}"
            excluded[reason] = excluded.get(reason, 0) + 1
        else:
            kept.append(r)
    return kept, excluded

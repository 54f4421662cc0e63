"""Suites as data: names resolve with a did-you-mean, overrides replace only what is given, and
a code suite's date window keeps problems from its start date up to (not including) its end."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from qwqrl.config import EvalConfig
from qwqrl.errors import UserError
from qwqrl.eval_suites import QWQ_SAMPLING, SUITES, Suite, get_suites, load_suite


def test_suites_resolve_by_name_with_a_did_you_mean() -> None:
    assert [s.name for s in get_suites("aime24, ifeval")] == ["aime24", "ifeval"]
    with pytest.raises(UserError, match="did you mean 'livecodebench'"):
        get_suites("livecodebnch")
    with pytest.raises(ValueError, match="eval.suites: unknown suite 'math-500'"):
        EvalConfig(suites=["math-500"])


def test_benchmark_suites_sample_with_qwq_settings() -> None:
    for name in ("aime24", "aime25", "math500", "livecodebench", "ifeval"):
        s = SUITES[name].sampling
        assert (s.temperature, s.top_p, s.top_k, s.max_new_tokens) == (0.6, 0.95, 20, 32768)


def test_overrides_replace_only_what_is_given() -> None:
    suite = SUITES["livecodebench"].with_overrides(samples=2, temperature=0.0, date_to="")
    assert suite.samples == 2 and suite.sampling.greedy
    assert suite.sampling.max_new_tokens == QWQ_SAMPLING.max_new_tokens
    assert suite.date_window == ("2024-08-01", None)
    assert SUITES["livecodebench"].samples == 8  # the registry is untouched


def code_rows(dates: list[str | None]) -> list[dict]:
    tests = {"type": "stdio", "cases": [{"input": "", "output": "1\n"}]}
    return [{"id": f"p{i}", "prompt": "Print 1.", "tests": tests,
             **({"contest_date": d} if d else {})} for i, d in enumerate(dates)]


def test_the_date_window_keeps_start_and_drops_end(tmp_path: Path) -> None:
    data = tmp_path / "lcb.jsonl"
    dates = ["2024-07-31T23:59:59", "2024-08-01T00:00:00", "2025-01-31", "2025-02-01"]
    data.write_text("".join(json.dumps(r) + "\n" for r in code_rows(dates)))
    suite = Suite("lcb", "LCB", "code", None, None, samples=1, date_window=("2024-08-01", "2025-02-01"))
    loaded = load_suite(suite, tmp_path, data=str(data))
    assert [r["id"] for r in loaded.records] == ["p1", "p2"]
    assert loaded.excluded == {"contest_date outside 2024-08-01..2025-02-01": 2}
    unbounded = load_suite(suite.with_overrides(date_from="", date_to=""), tmp_path, data=str(data))
    assert len(unbounded.records) == 4


def test_a_windowed_record_without_a_date_is_named(tmp_path: Path) -> None:
    data = tmp_path / "lcb.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in code_rows(["2024-09-01", None])))
    suite = Suite("lcb", "LCB", "code", None, None, samples=1, date_window=("2024-08-01", None))
    with pytest.raises(UserError, match="record 'p1' has no `contest_date`"):
        load_suite(suite, tmp_path, data=str(data))


def test_a_suite_without_default_data_asks_for_it(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="give it with --data"):
        load_suite(SUITES["general"], tmp_path)

"""Each suite's converter on its fixture rows (rows in the dataset's own schema, shipped with
qwqrl.data.converters): every row becomes a valid record of the suite's task; math suites' gold
answers, written as a model would, are judged correct and give avg@k = pass@k = 1."""
from __future__ import annotations

import pytest

from qwqrl.data.converters import CONVERTERS, SkipRow
from qwqrl.data.records import validate_record
from qwqrl.eval_suites import SUITES, SuiteData, load_suite
from qwqrl.evaluation import Completion, judge, suite_result

CONVERTED = sorted(name for name, suite in SUITES.items() if suite.converter)


@pytest.mark.parametrize("name", CONVERTED)
def test_suite_converter_makes_valid_records_of_its_task(name: str) -> None:
    suite = SUITES[name]
    converter = CONVERTERS[suite.converter]
    records = []
    for row in converter.fixture_rows():
        try:
            records.append(converter.fn(dict(row)))
        except SkipRow:
            continue
    assert records, f"{suite.converter}: no fixture row converts"
    for record in records:
        record.setdefault("task", suite.task)
        assert record["task"] == suite.task
        assert validate_record(record) == []


def test_the_livecodebench_window_reads_the_converted_contest_date(tmp_path) -> None:
    import json

    rows = CONVERTERS["livecodebench"].fixture_rows()
    data = tmp_path / "lcb.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    dates = sorted(CONVERTERS["livecodebench"].fn(dict(r))["contest_date"] for r in rows)
    suite = SUITES["livecodebench"].with_overrides(date_from=dates[-1], date_to="")
    loaded = load_suite(suite, tmp_path, data=str(data))
    assert [r["contest_date"] for r in loaded.records] == [d for d in dates if d >= dates[-1]]
    assert sum(loaded.excluded.values()) == sum(d < dates[-1] for d in dates)


@pytest.mark.parametrize("name", ["aime24", "math500"])
def test_math_suites_judge_their_gold_answers_correct(name: str) -> None:
    suite = SUITES[name].with_overrides(samples=2)
    converter = CONVERTERS[suite.converter]
    records = [converter.fn(dict(row)) for row in converter.fixture_rows()]
    completions = [Completion(i, j, f"think</think>The answer is $\\boxed{{{r['answer']}}}$.")
                   for i, r in enumerate(records) for j in range(2)]
    verdicts = judge("math", records, completions, think_opened=True)
    result = suite_result(SuiteData(suite, records, "fixture"), completions, verdicts)
    assert {row.metric: row.value for row in result.rows} == {"avg@2": 1.0, "pass@1": 1.0, "pass@2": 1.0}

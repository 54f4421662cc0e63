"""A data source's column mapping: rename, converter, fixed values, task, applied in that order
when the source loads; a row it cannot apply to is an error naming the source and the row."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from qwqrl.config import DataSource
from qwqrl.data import load_source
from qwqrl.data.converters import CONVERTERS
from qwqrl.errors import UserError
from qwqrl.recipe import validate


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def load(path: Path, **kw) -> list[dict]:
    return load_source(DataSource(path=path.name, **kw), base=path.parent)


def test_rename_and_fixed_make_records_of_a_foreign_layout(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"question": "1+1?", "gold": "2", "prompt": "old"},
                                              {"question": "2+2?", "gold": 4, "prompt": "old"}])
    records = load(path, rename={"question": "prompt", "gold": "answer"},
                   fixed={"source": "mine"}, task="math")
    # the renamed column wins over a column that already had the target name
    assert records == [
        {"prompt": "1+1?", "answer": "2", "source": "mine", "task": "math", "id": "d.jsonl#0"},
        {"prompt": "2+2?", "answer": 4, "source": "mine", "task": "math", "id": "d.jsonl#1"},
    ]


def test_rename_feeds_a_converter_a_dataset_with_other_column_names(tmp_path):
    """AIME 2025 as some mirrors publish it (`question`), through the aime converter."""
    path = write_jsonl(tmp_path / "aime25.jsonl", [{"question": "Find 7.", "answer": "7",
                                                    "id": 3, "year": "2025"}])
    assert load(path, rename={"question": "problem"}, converter="aime") == [
        {"task": "math", "prompt": "Find 7.", "answer": "7", "id": "aime2025-3"}]


def test_fixed_and_task_apply_after_the_converter(tmp_path):
    row = CONVERTERS["codeforces"].fixture_rows()[0]
    path = write_jsonl(tmp_path / "cf.jsonl", [row])
    (record,) = load(path, converter="codeforces", fixed={"language": "cpp"})
    assert record["language"] == "cpp" and record["tests"]["cases"][0]["output"] == "0 2 1 \n"


def test_a_missing_column_names_the_file_line_and_the_columns_there(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"question": "q", "answer": "1"},
                                              {"query": "q", "answer": "1"}])
    with pytest.raises(UserError) as e:
        load(path, rename={"question": "prompt"}, task="math")
    assert str(e.value) == "d.jsonl:2: rename: no column 'question' (columns: answer, query)"


def test_a_converter_error_names_the_source_row_and_converter(tmp_path):
    good = CONVERTERS["openr1_math"].fixture_rows()[0]
    bad = {k: v for k, v in good.items() if k != "problem"}
    path = write_jsonl(tmp_path / "r1.jsonl", [good, bad])
    with pytest.raises(UserError) as e:
        load(path, converter="openr1_math")
    assert str(e.value).startswith("r1.jsonl:2: converter 'openr1_math': missing field 'problem' "
                                   "(columns: answer, correctness_count,")
    bad_json = dict(CONVERTERS["deepcoder"].fixture_rows()[0], tests="[{not json")
    write_jsonl(path, [bad_json])
    with pytest.raises(UserError, match=r"r1.jsonl:1: converter 'deepcoder': Expecting"):
        load(path, converter="deepcoder")


def test_skipped_rows_are_counted_by_reason_and_limit_counts_records(tmp_path, capsys):
    rows = CONVERTERS["codeforces"].fixture_rows()  # record, checker, interactive, record
    path = write_jsonl(tmp_path / "cf.jsonl", rows)
    assert [r["id"] for r in load(path, converter="codeforces")] == ["1016/A", "1016/A"]
    assert capsys.readouterr().err == (
        "cf.jsonl: skipped 2 rows that converter 'codeforces' cannot make checkable records of "
        "(custom output checker (several answers accepted): 1; interactive problem: 1)\n")
    assert len(load(path, converter="codeforces", limit=2)) == 2  # reads past the skipped rows
    write_jsonl(path, rows[1:3])
    with pytest.raises(UserError, match="no records left after converter 'codeforces' skipped"):
        load(path, converter="codeforces")


RECIPE = {"name": "t", "model": {"tiny": {"preset": "tiny"}},
          "stages": [{"name": "s", "kind": "sft", "data": {"train": []}}]}


def problems_of(source: dict) -> str:
    raw = json.loads(json.dumps(RECIPE))
    raw["stages"][0]["data"]["train"] = [source]
    with pytest.raises(UserError) as e:
        validate(raw)
    return str(e.value)


@pytest.mark.parametrize("source, message", [
    ({"hub": "x", "converter": "open_r1_math"},
     "stages[0].data.train[0].converter: unknown converter 'open_r1_math'; "
     "did you mean 'openr1_math'?"),
    ({"hub": "x", "converter": "zzz"},
     "stages[0].data.train[0].converter: unknown converter 'zzz'; expected one of aime, "),
    ({"hub": "x", "rename": {"a": "prompt", "b": "prompt"}},
     "stages[0].data.train[0]: rename: several columns renamed to ['prompt']"),
    ({"hub": "x", "fixed": {"task": "math"}},
     "stages[0].data.train[0]: fixed: set the task with the source's `task`, not in `fixed`"),
    ({"hub": "x", "rename": {"q": "prompt"}, "fixed": {"prompt": "hi"}},
     "stages[0].data.train[0]: rename and fixed both set ['prompt']; keep one"),
    ({"hub": "x", "renames": {"q": "prompt"}},
     "stages[0].data.train[0].renames: unknown key; did you mean `rename`?"),
])
def test_bad_mappings_are_recipe_errors(source, message):
    assert message in problems_of(source)

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from qwqrl.config import DataSource
from qwqrl.data import load_source
from qwqrl.errors import UserError

MATH = {"task": "math", "prompt": "What is 1+1?", "answer": "2"}
CODE = {"task": "code", "prompt": "Print 1.",
        "tests": {"type": "stdio", "cases": [{"input": "", "output": "1\n"}]}}
IFEVAL = {"task": "ifeval", "prompt": "Answer in lowercase.",
          "instruction_id_list": ["change_case:english_lowercase"], "kwargs": [{}]}
GENERAL = {"task": "general", "prompt": [{"role": "system", "content": "Be kind."},
                                         {"role": "user", "content": "Hi!"}]}
TOOL_CALL = {"task": "tool_call", "prompt": "Weather in Paris?",
             "tools": [{"type": "function", "function": {
                 "name": "get_weather", "parameters": {
                     "type": "object", "properties": {"city": {"type": "string"}},
                     "required": ["city"]}}}],
             "answer": [{"get_weather": {"city": ["Paris"]}}]}
GOOD = [MATH, CODE, IFEVAL, GENERAL]


def without(record: dict, key: str) -> dict:
    return {k: v for k, v in record.items() if k != key}


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def load(path: Path, **kw) -> list[dict]:
    return load_source(DataSource(path=str(path), **kw), base=path.parent)


def test_jsonl_json_and_parquet_load_the_same_records(tmp_path):
    jsonl = write_jsonl(tmp_path / "d.jsonl", GOOD)
    as_json = tmp_path / "d.json"
    as_json.write_text(json.dumps(GOOD))
    parquet = tmp_path / "d.parquet"
    pq.write_table(pa.Table.from_pylist([MATH, dict(MATH, answer="3")]), parquet)

    for path in (jsonl, as_json):
        records = load(path)
        assert [r["task"] for r in records] == ["math", "code", "ifeval", "general"]
        assert records[1]["tests"] == CODE["tests"]
    assert [r["answer"] for r in load(parquet)] == ["2", "3"]


def test_tool_call_records_load_with_tools_and_answer_as_lists_or_json_strings(tmp_path):
    as_strings = dict(TOOL_CALL, tools=json.dumps(TOOL_CALL["tools"]),
                      answer=json.dumps(TOOL_CALL["answer"]))
    records = load(write_jsonl(tmp_path / "tools.jsonl", [TOOL_CALL, as_strings]))
    assert [r["answer"] for r in records] == [TOOL_CALL["answer"], as_strings["answer"]]


def test_json_file_may_hold_json_lines(tmp_path):
    path = write_jsonl(tmp_path / "lines.json", [MATH, MATH])
    assert len(load(path)) == 2


def test_ids_are_stable_and_kept_when_given(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [MATH, dict(MATH, id="mine")])
    first, second = load(path)
    assert second["id"] == "mine"
    assert first["id"] == load(path)[0]["id"]


def test_task_and_limit_from_the_source(tmp_path):
    rows = [{"prompt": f"q{i}", "answer": str(i)} for i in range(5)]
    path = write_jsonl(tmp_path / "untagged.jsonl", rows)
    records = load(path, task="math", limit=3)
    assert [r["prompt"] for r in records] == ["q0", "q1", "q2"]
    assert {r["task"] for r in records} == {"math"}


def test_relative_path_resolves_against_the_recipe_folder(tmp_path, monkeypatch):
    write_jsonl(tmp_path / "d.jsonl", [MATH])
    monkeypatch.chdir("/")
    assert len(load_source(DataSource(path="d.jsonl"), base=tmp_path)) == 1


def test_apps_input_output_is_accepted_as_string_or_dict(tmp_path):
    io = {"inputs": ["1\n"], "outputs": ["2\n"]}
    rows = [{"task": "code", "prompt": "p", "input_output": json.dumps(io)},
            {"task": "code", "prompt": "p", "input_output": io}]
    assert len(load(write_jsonl(tmp_path / "apps.jsonl", rows))) == 2


def test_null_columns_count_as_missing(tmp_path):
    """Parquet unifies columns: a math row in a mixed file carries `tests: None`."""
    parquet = tmp_path / "mixed.parquet"
    pq.write_table(pa.Table.from_pylist([dict(MATH, tests=None, id=None)]), parquet)
    (record,) = load(parquet)
    assert record["id"].endswith("#0")


BAD = [
    ({"prompt": "p", "answer": "1"}, '"task" is required'),
    (dict(MATH, task="poetry"), '"task" must be one of math, code, ifeval, general'),
    (without(MATH, "answer"), 'field "answer" is required for task "math"'),
    (dict(MATH, answer=""), 'field "answer" must be a non-empty string'),
    (dict(MATH, answer=[1]), 'field "answer" must be'),
    (dict(MATH, prompt=""), 'field "prompt" must be a non-empty string'),
    (dict(MATH, prompt=42), 'field "prompt" must be'),
    (dict(MATH, prompt=[]), 'field "prompt" must be'),
    (dict(MATH, prompt=[{"role": "robot", "content": "x"}]), 'field "prompt[0].role"'),
    (dict(MATH, prompt=[{"role": "user"}]), 'field "prompt[0].content"'),
    (dict(MATH, prompt=["hi"]), 'field "prompt[0]"'),
    (dict(MATH, prompt=[{"role": "system", "content": "x"}]), 'role "user"'),
    (dict(MATH, completion=3), 'field "completion" must be a string'),
    (dict(MATH, id=[1]), 'field "id"'),
    (without(CODE, "tests"), 'field "tests" (or APPS/TACO "input_output") is required'),
    (dict(CODE, tests={"type": "unit"}), 'field "tests" must be an object with "type"'),
    (dict(CODE, tests=["1"]), 'field "tests" must be an object'),
    (dict(CODE, tests={"type": "stdio", "cases": []}), 'field "tests.cases" must be a non-empty list'),
    (dict(CODE, tests={"type": "stdio", "cases": [{"input": "1"}]}), 'field "tests.cases[0].output"'),
    (dict(CODE, tests={"type": "stdio", "cases": ["1"]}), 'field "tests.cases[0]" must be an object'),
    (dict(CODE, tests={"type": "call", "cases": [{"args": [], "expected": 1}]}), 'field "tests.fn_name"'),
    (dict(CODE, tests={"type": "call", "fn_name": "f", "cases": [{"args": [1]}]}),
     'field "tests.cases[0].expected"'),
    (dict(CODE, tests={"type": "assert", "asserts": [1]}), 'field "tests.asserts[0]" must be a string'),
    (dict(CODE, language=["py"]), 'field "language" must be a string'),
    (dict(without(CODE, "tests"), input_output="{bad json"),
     'field "input_output" is not valid JSON'),
    (dict(without(CODE, "tests"), input_output={"inputs": ["1"], "outputs": []}),
     'field "input_output" has 1 inputs but 0 outputs'),
    (without(IFEVAL, "kwargs"), 'field "kwargs" is required for task "ifeval"'),
    (without(IFEVAL, "instruction_id_list"),
     'field "instruction_id_list" is required for task "ifeval"'),
    (dict(IFEVAL, kwargs=[{}, {}]), 'field "kwargs" must have one entry per instruction'),
    (dict(IFEVAL, instruction_id_list="change_case:english_lowercase"),
     'field "instruction_id_list" must be a list of strs'),
    (dict(IFEVAL, instruction_id_list=[], kwargs=[]), 'field "instruction_id_list" must not be empty'),
    (without(TOOL_CALL, "tools"), 'field "tools" is required for task "tool_call"'),
    (dict(TOOL_CALL, answer=[{"book": {}}]), 'field "answer[0]" calls \'book\', which is not in'),
    (dict(TOOL_CALL, answer=[{"get_weather": {}}]),
     'field "answer[0].get_weather" lacks required parameter(s) city'),
    ("just a string", "a record is a JSON object"),
]


@pytest.mark.parametrize("row, expected", BAD, ids=[e for _, e in BAD])
def test_bad_record_names_file_line_and_field(tmp_path, row, expected):
    path = write_jsonl(tmp_path / "data.jsonl", [MATH, row])
    with pytest.raises(UserError) as e:
        load(path)
    assert str(e.value).startswith(f"{path}:2: ")
    assert expected in str(e.value)


def test_error_names_the_path_as_written_in_the_recipe(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    write_jsonl(tmp_path / "data" / "math.jsonl", [MATH] * 16 + [{"task": "math", "prompt": "q"}])
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match=r'^data/math.jsonl:17: field "answer" is required for task "math"$'):
        load_source(DataSource(path="data/math.jsonl"), base=tmp_path)


def test_blank_lines_keep_line_numbers_and_bad_json_is_located(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps(MATH) + "\n\n" + '{"task": "math",\n')
    with pytest.raises(UserError, match=r"d.jsonl:3: not valid JSON"):
        load(path)


def test_many_errors_are_listed_then_counted(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"task": "math", "prompt": "q"}] * 25)
    with pytest.raises(UserError) as e:
        load(path)
    assert str(e.value).count('"answer" is required') == 10
    assert str(e.value).endswith("... and 15 more problems")


def test_parquet_errors_name_the_row(tmp_path):
    parquet = tmp_path / "d.parquet"
    pq.write_table(pa.Table.from_pylist([MATH, dict(MATH, answer=None)]), parquet)
    with pytest.raises(UserError, match=r'd.parquet: record 2: field "answer" is required'):
        load(parquet)


@pytest.mark.parametrize("name, content, expected", [
    ("d.csv", "a,b\n", "unknown data file type '.csv'"),
    ("d.json", '{"task": "math"}', "expected a JSON array of records"),
    ("d.jsonl", "", "no records"),
    ("d.parquet", "not parquet", "cannot read as Parquet"),
])
def test_unreadable_files(tmp_path, name, content, expected):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(UserError, match=expected):
        load(path)


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match="nope.jsonl: file not found"):
        load_source(DataSource(path="nope.jsonl"), base=tmp_path)


def test_synthetic_source_and_bad_options():
    records = load_source(DataSource(synthetic="arithmetic", options={"n": 5, "seed": 1}), Path("."))
    assert len(records) == 5 and records[0]["id"] == "arithmetic(n=5,seed=1)#0"
    with pytest.raises(UserError, match="synthetic 'arithmetic': bad options"):
        load_source(DataSource(synthetic="arithmetic", options={"n": 5, "colour": "red"}), Path("."))
    with pytest.raises(UserError, match="bad options"):
        load_source(DataSource(synthetic="arithmetic", options={}), Path("."))


def test_hub_source_goes_through_load_dataset(monkeypatch):
    """No hub access: load_dataset is replaced by one returning local splits."""
    import datasets

    splits = datasets.DatasetDict({"train": datasets.Dataset.from_list([MATH]),
                                   "test": datasets.Dataset.from_list([MATH, MATH])})
    calls = []

    def fake_load_dataset(hub_id, **options):
        calls.append((hub_id, options))
        if hub_id == "missing/set":
            raise datasets.exceptions.DatasetNotFoundError("no such dataset")
        return splits[options["split"]] if "split" in options else splits

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    records = load_source(DataSource(hub="org/math", options={"split": "test"}), Path("."))
    assert len(records) == 2 and records[1]["id"] == "org/math#1"
    assert calls == [("org/math", {"split": "test"})]
    with pytest.raises(UserError, match=r"org/math: has splits \['test', 'train'\]; choose one"):
        load_source(DataSource(hub="org/math"), Path("."))
    with pytest.raises(UserError, match="missing/set: cannot load"):
        load_source(DataSource(hub="missing/set"), Path("."))

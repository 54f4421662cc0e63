"""xLAM function-calling rows become tool_call records whose own reference calls score 1."""
from __future__ import annotations

import json

import pytest

from qwqrl.data.converters import CONVERTERS, SkipRow
from qwqrl.data.converters.function_calling import json_schema, xlam_function_calling
from qwqrl.data.records import validate_record
from qwqrl.verifiers.tool_call import verify_batch

ROWS = CONVERTERS["xlam_function_calling"].fixture_rows()
BY_ID = {row["id"]: row for row in ROWS}


def convert(row: dict) -> dict | str:
    """The record, or the reason the row is skipped."""
    try:
        return xlam_function_calling(row)
    except SkipRow as e:
        return str(e)


def as_completion(calls: list[dict]) -> str:
    blocks = [f"<tool_call>\n{json.dumps(c)}\n</tool_call>" for c in calls]
    return "Let me call the tools.\n</think>\n\n" + "\n".join(blocks)


def judge(record: dict, calls: list[dict]) -> float | None:
    return verify_batch([{**record, "completion": as_completion(calls)}])[0].score


def test_registered_with_a_fixture_in_the_real_schema():
    assert CONVERTERS["xlam_function_calling"].fn is xlam_function_calling
    for row in ROWS:  # the dataset's columns: id, query, and JSON strings for answers/tools
        assert set(row) == {"id", "query", "answers", "tools"}
        assert isinstance(row["answers"], str) and isinstance(row["tools"], str)


def test_every_converted_record_is_valid_and_its_reference_calls_score_one():
    records = {row["id"]: convert(row) for row in ROWS}
    # row 5 gives a float as a string: skipped
    assert records[5] == "its own calls do not pass the tool_call verifier"
    for row in ROWS:
        record = records[row["id"]]
        if row["id"] == 5:
            continue
        assert validate_record(record) == [], record["id"]
        assert record["task"] == "tool_call" and record["prompt"] == row["query"]
        assert judge(record, json.loads(row["answers"])) == 1.0, record["id"]


def test_tools_become_openai_schemas_with_json_types_required_and_descriptions():
    record = xlam_function_calling(BY_ID[3])
    (tool,) = record["tools"]
    assert tool["type"] == "function"
    assert tool["function"]["name"] == "probability_of_consecutive_rolls"
    params = tool["function"]["parameters"]
    assert params["properties"]["num_sides"] == {
        "type": "integer", "description": "The number of sides on the die. Defaults to 6."}
    # target_value and num_rolls have defaults a call may rely on; num_sides is optional
    assert params["required"] == []
    assert xlam_function_calling(BY_ID[2])["tools"][0]["function"]["parameters"]["required"] == [
        "list1", "list2"]


@pytest.mark.parametrize("text, schema", [
    ("str", {"type": "string"}), ("int", {"type": "integer"}), ("float", {"type": "number"}),
    ("bool", {"type": "boolean"}), ("list", {"type": "array"}), ("dict", {"type": "object"}),
    ("List[int]", {"type": "array", "items": {"type": "integer"}}),
    ("List[Dict[str, Any]]", {"type": "array", "items": {"type": "object"}}),
    ("List[List[str]]", {"type": "array", "items": {"type": "array", "items": {"type": "string"}}}),
    ("List[Union[int, float]]", {"type": "array", "items": {"type": "number"}}),
    ("Optional[str]", {"type": "string"}), ("Tuple[int, int]", {"type": "array"}),
    ("Union[str, int]", {}), ("Any", {}), ("Callable", {}),
])
def test_python_type_strings_map_to_json_schema(text, schema):
    assert json_schema(text) == schema


def test_answers_accept_defaults_and_omission_as_bfcl_possible_answers_do():
    record = xlam_function_calling(BY_ID[1])
    t3ma, profile = record["answer"]
    assert t3ma == {"t3ma": {"symbol": ["ETH/BTC"], "interval": ["1h"], "time_period": [14],
                             "format": ["json", ""], "outputsize": [30, ""]}}
    # v_factor's default (0.7) is not an int: no default to accept, so it is not listed
    assert profile == {"stock_v2_get_profile": {"performanceid": ["0P0000OQN8", ""]}}
    calls = json.loads(BY_ID[1]["answers"])
    with_defaults = [{"name": "t3ma", "arguments": {**calls[0]["arguments"], "format": "JSON",
                                                    "outputsize": 30}}, calls[1]]
    assert judge(record, with_defaults) == 1.0
    wrong_period = [{"name": "t3ma", "arguments": {**calls[0]["arguments"], "time_period": 9}},
                    calls[1]]
    assert judge(record, wrong_period) == 0.0
    extra = [{"name": "t3ma", "arguments": {**calls[0]["arguments"], "v_factor": 1}}, calls[1]]
    assert judge(record, extra) == 0.0


def test_parallel_calls_in_any_order_and_irrelevance_rows():
    record = xlam_function_calling(BY_ID[0])
    calls = json.loads(BY_ID[0]["answers"])
    assert judge(record, calls[::-1]) == 1.0
    assert judge(record, calls[:1]) == 0.0
    irrelevant = xlam_function_calling(BY_ID[7])
    assert irrelevant["answer"] == []
    assert judge(irrelevant, []) == 1.0 and judge(irrelevant, calls[:1]) == 0.0
    # the irrelevance set's rows may carry lists instead of JSON strings, and no id
    decoded = {"query": BY_ID[7]["query"], "tools": json.loads(BY_ID[7]["tools"]), "answers": []}
    assert convert(decoded) == {k: v for k, v in irrelevant.items() if k != "id"}


def test_rows_the_verifier_could_not_pass_are_skipped():
    row = BY_ID[6]
    assert isinstance(convert(row), dict)
    unknown_tool = dict(row, answers=json.dumps([{"name": "nope", "arguments": {}}]))
    unknown_param = dict(row, answers=json.dumps(
        [{"name": "search_wikihow", "arguments": {"q": "x", "lang": "en"}}]))
    assert convert(unknown_tool) == "calls a tool the row does not list"
    assert convert(unknown_param) == "its own calls do not pass the tool_call verifier"
    bad_type = dict(row, tools=json.dumps([{"name": "search_wikihow", "parameters": {
        "q": {"type": "str"}, "n": {"type": "int"}}}]),
        answers=json.dumps([{"name": "search_wikihow", "arguments": {"q": "x", "n": "5"}}]))
    assert convert(bad_type) == "its own calls do not pass the tool_call verifier"

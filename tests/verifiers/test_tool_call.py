"""The tool_call verifier judges function calls as BFCL's AST checker does: one test per rule."""
from __future__ import annotations

import json

import pytest

from qwqrl.verifiers.tool_call import (
    _matching, contract_problems, parse_calls, Malformed, standardize, tool_call_reward,
    verify_batch,
)

DONE = "The user wants the weather.\n</think>\n\n"


def fn(name: str, properties: dict, required: list[str]) -> dict:
    return {"type": "function", "function": {
        "name": name, "description": f"{name} does things",
        "parameters": {"type": "object", "properties": properties, "required": required}}}


TOOLS = [
    fn("get_weather", {"city": {"type": "string"},
                       "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                       "days": {"type": "integer"}},
       ["city"]),
    fn("convert", {"amount": {"type": "number"}, "exact": {"type": "boolean"},
                   "path": {"type": "array", "items": {"type": "integer"}},
                   "names": {"type": "array", "items": {"type": "string"}},
                   "options": {"type": "object"},
                   "rows": {"type": "array", "items": {"type": "object"}}},
       []),
]
WEATHER = [{"get_weather": {"city": ["Paris", "Paris, France"], "unit": ["celsius", ""]}}]


def block(name: str, arguments: dict) -> str:
    return f'<tool_call>\n{json.dumps({"name": name, "arguments": arguments})}\n</tool_call>'


def judge(answer: list, *calls: str, prefix: str = DONE, tools: list = TOOLS, **options):
    record = {"task": "tool_call", "tools": tools, "answer": answer,
              "completion": prefix + "\n".join(calls)}
    return verify_batch([record], **options)[0]


def score(answer: list, *calls: str, **kw) -> float | None:
    return judge(answer, *calls, **kw).score


def test_the_expected_call_scores_one_and_detail_lists_the_parsed_calls():
    v = judge(WEATHER, block("get_weather", {"city": "Paris"}))
    assert v.score == 1.0 and v.error is None
    assert v.detail == {"verifier": "tool_call",
                        "calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]}


def test_function_names_must_match_exactly():
    v = judge(WEATHER, block("Get_Weather", {"city": "Paris"}))
    assert v.score == 0.0 and v.detail["reason"] == "mismatch"
    assert "no unpaired call to 'get_weather'" in v.detail["message"]
    assert score(WEATHER, block("get_weather_v2", {"city": "Paris"})) == 0.0


def test_a_required_parameter_must_be_present_even_if_the_answer_calls_it_optional():
    tools = [fn("f", {"a": {"type": "integer"}}, ["a"])]
    assert contract_problems({"tools": tools, "answer": [{"f": {}}]}) == [
        'field "answer[0].f" lacks required parameter(s) a']
    v = judge([{"f": {"a": [1, ""]}}], block("f", {}), tools=tools)
    assert v.score == 0.0 and "missing required parameter 'a'" in v.detail["message"]


def test_only_parameters_the_answer_lists_may_be_given():
    # `days` is in the schema but not in the answer; `country` is in neither
    v = judge(WEATHER, block("get_weather", {"city": "Paris", "days": 3}))
    assert v.score == 0.0 and "unexpected parameter 'days'" in v.detail["message"]
    assert score(WEATHER, block("get_weather", {"city": "Paris", "country": "FR"})) == 0.0


def test_an_expected_parameter_may_be_left_out_only_when_its_values_include_empty_string():
    answer = [{"get_weather": {"city": ["Paris"], "days": [3]}}]
    v = judge(answer, block("get_weather", {"city": "Paris"}))
    assert v.score == 0.0 and "'days' left out" in v.detail["message"]
    assert score(answer, block("get_weather", {"city": "Paris", "days": 3})) == 1.0
    # `unit` carries "": leaving it out and giving an accepted value both pass
    assert score(WEATHER, block("get_weather", {"city": "Paris", "unit": "celsius"})) == 1.0
    assert score(WEATHER, block("get_weather", {"city": "Paris", "unit": "kelvin"})) == 0.0


@pytest.mark.parametrize("value, ok", [
    (3, True), (3.0, False), ("3", False), (True, False),  # integer: exactly an int
])
def test_integer_parameters_take_integers_only(value, ok):
    answer = [{"get_weather": {"city": ["Paris"], "days": [3]}}]
    assert score(answer, block("get_weather", {"city": "Paris", "days": value})) == float(ok)


@pytest.mark.parametrize("value, ok", [
    (2.5, True), (2, False), (True, False), ("2.5", False),
])
def test_number_parameters_take_floats_and_integers_but_never_booleans_or_strings(value, ok):
    assert score([{"convert": {"amount": [2.5]}}], block("convert", {"amount": value})) == float(ok)


def test_an_integer_is_accepted_for_a_number_and_compared_by_value():
    assert score([{"convert": {"amount": [2.0]}}], block("convert", {"amount": 2})) == 1.0
    assert score([{"convert": {"amount": [2]}}], block("convert", {"amount": 2.0})) == 1.0


def test_booleans_are_their_own_type():
    answer = [{"convert": {"exact": [True]}}]
    assert score(answer, block("convert", {"exact": True})) == 1.0
    assert score(answer, block("convert", {"exact": 1})) == 0.0
    assert score(answer, block("convert", {"exact": "true"})) == 0.0
    assert score([{"convert": {"amount": [1]}}], block("convert", {"amount": True})) == 0.0


def test_strings_are_compared_after_bfcl_normalisation():
    assert standardize("April 1, 2024") == standardize("april 1 2024") == "april12024"
    assert standardize("New_York-City*^/.") == "newyorkcity"
    assert standardize("it's") == 'it"s'
    answer = [{"get_weather": {"city": ["San Francisco, CA"]}}]
    assert score(answer, block("get_weather", {"city": "san francisco ca"})) == 1.0
    assert score(answer, block("get_weather", {"city": "San-Francisco,CA."})) == 1.0
    assert score(answer, block("get_weather", {"city": "San Francisco, California"})) == 0.0


def test_any_of_the_acceptable_values_matches():
    assert score(WEATHER, block("get_weather", {"city": "Paris, France"})) == 1.0
    assert score(WEATHER, block("get_weather", {"city": "Lyon"})) == 0.0


def test_lists_match_item_by_item_in_order_with_typed_items():
    answer = [{"convert": {"path": [[1, 2, 3]], "names": [["New York", "Paris"], ""]}}]
    assert score(answer, block("convert", {"path": [1, 2, 3]})) == 1.0
    assert score(answer, block("convert", {"path": [3, 2, 1]})) == 0.0
    assert score(answer, block("convert", {"path": [1, 2]})) == 0.0
    v = judge(answer, block("convert", {"path": [1, 2.0, 3]}))  # an item of the wrong type
    assert v.score == 0.0 and "item expected type integer" in v.detail["message"]
    both = {"path": [1, 2, 3], "names": ["new york", "PARIS"]}  # items normalised like strings
    assert score(answer, block("convert", both)) == 1.0


def test_objects_match_in_the_possible_answer_form_key_by_key():
    answer = [{"convert": {"options": [{"mode": ["fast", "quick"], "retries": [3, ""]}]}}]
    assert score(answer, block("convert", {"options": {"mode": "Fast"}})) == 1.0
    assert score(answer, block("convert", {"options": {"mode": "quick", "retries": 3}})) == 1.0
    assert score(answer, block("convert", {"options": {"mode": "fast", "retries": 4}})) == 0.0
    assert score(answer, block("convert", {"options": {"retries": 3}})) == 0.0  # mode needed
    assert score(answer, block("convert", {"options": {"mode": "fast", "x": 1}})) == 0.0
    assert score(answer, block("convert", {"options": "fast"})) == 0.0  # not an object


def test_lists_of_objects_match_each_object_in_order():
    answer = [{"convert": {"rows": [[{"id": [1]}, {"id": [2], "tag": ["a", ""]}]]}}]
    assert score(answer, block("convert", {"rows": [{"id": 1}, {"id": 2, "tag": "A"}]})) == 1.0
    assert score(answer, block("convert", {"rows": [{"id": 2}, {"id": 1}]})) == 0.0
    assert score(answer, block("convert", {"rows": [{"id": 1}]})) == 0.0


def test_parallel_calls_are_order_free_and_counted():
    answer = [{"get_weather": {"city": ["Paris"]}}, {"get_weather": {"city": ["Tokyo"]}}]
    paris, tokyo = (block("get_weather", {"city": c}) for c in ("Paris", "Tokyo"))
    assert score(answer, paris, tokyo) == 1.0
    assert score(answer, tokyo, paris) == 1.0
    v = judge(answer, paris)
    assert v.score == 0.0 and v.detail["reason"] == "wrong_count"
    assert score(answer, paris, tokyo, tokyo) == 0.0
    assert score(answer, paris, paris) == 0.0  # one-to-one: Paris cannot answer for Tokyo


def test_multiple_functions_offered_and_one_or_several_called():
    answer = [{"convert": {"amount": [2.5]}}, {"get_weather": {"city": ["Paris"]}}]
    calls = block("get_weather", {"city": "Paris"}), block("convert", {"amount": 2.5})
    assert score(answer, *calls) == 1.0
    assert score(answer[:1], calls[1]) == 1.0
    assert score(answer[:1], calls[0]) == 0.0  # the wrong one of the offered functions


def test_matching_accepts_what_bfcl_greedy_pairing_rejects():
    # A accepts Paris or Tokyo, B only Paris. Written as [Paris, Tokyo], BFCL's greedy pass
    # gives Paris to A and then finds nothing for B; the one-to-one pairing A-Tokyo, B-Paris exists.
    answer = [{"get_weather": {"city": ["Paris", "Tokyo"]}}, {"get_weather": {"city": ["Paris"]}}]
    calls = block("get_weather", {"city": "Paris"}), block("get_weather", {"city": "Tokyo"})
    assert score(answer, *calls) == 1.0
    assert score(answer, *reversed(calls)) == 1.0
    assert _matching([[True, True], [True, False]]) == [1, 0]
    assert _matching([[True, False], [True, False]]) == [0, None]


def test_irrelevance_empty_answer_means_no_call_may_be_made():
    v = judge([], "None of the tools can book a flight.")
    assert v.score == 1.0 and v.detail["calls"] == []
    v = judge([], block("get_weather", {"city": "Paris"}))
    assert v.score == 0.0 and v.detail["reason"] == "wrong_count"
    assert judge("[]", "No tool fits.").score == 1.0  # the answer as a JSON string


def test_a_call_is_expected_but_the_model_answers_in_prose():
    v = judge(WEATHER, "It is probably sunny in Paris.")
    assert v.score == 0.0 and v.detail == {"verifier": "tool_call", "calls": [],
                                           "reason": "wrong_count",
                                           "message": "0 call(s), expected 1"}


def test_prose_around_and_between_calls_is_allowed():
    answer = [{"get_weather": {"city": ["Paris"]}}, {"get_weather": {"city": ["Tokyo"]}}]
    text = ("I will check both cities.\n" + block("get_weather", {"city": "Paris"})
            + "\nand then\n" + block("get_weather", {"city": "Tokyo"}) + "\nDone.")
    assert score(answer, text) == 1.0


def test_calls_inside_the_reasoning_are_ignored():
    thinking = "Maybe " + block("get_weather", {"city": "Paris"}) + " would work.\n</think>\n"
    assert score(WEATHER, "I cannot help.", prefix=thinking) == 0.0
    assert score([], "I cannot help.", prefix=thinking) == 1.0
    assert score(WEATHER, block("get_weather", {"city": "Paris"}), prefix=thinking) == 1.0
    # only the text after the last </think> counts
    twice = "a</think>" + block("get_weather", {"city": "Paris"}) + "</think>\n"
    assert score(WEATHER, "no call", prefix=twice) == 0.0


def test_unfinished_reasoning_earns_nothing_unless_the_template_did_not_open_it():
    call = block("get_weather", {"city": "Paris"})
    v = judge(WEATHER, call, prefix="still thinking ")
    assert v.score == 0.0 and v.detail["reason"] == "unfinished"
    assert score(WEATHER, call, prefix="", think_opened=False) == 1.0
    assert score(WEATHER, call, prefix="<think>never closed ", think_opened=False) == 0.0


@pytest.mark.parametrize("text, why", [
    ("<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {}}", "never closed"),
    ("{\"name\": \"get_weather\", \"arguments\": {}}\n</tool_call>", "without <tool_call>"),
    ("<tool_call><tool_call>{}</tool_call>", "opened again"),
    ("<tool_call>\n{'name': 'get_weather', 'arguments': {}}\n</tool_call>", "not JSON"),
    ("<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}\n</tool_call>",
     "not JSON"),
    ("<tool_call>\n[\"get_weather\"]\n</tool_call>", "expected {\"name\""),
    ("<tool_call>\n{\"name\": 7, \"arguments\": {}}\n</tool_call>", "expected {\"name\""),
    ("<tool_call>\n{\"name\": \"get_weather\", \"arguments\": \"{\\\"city\\\": \\\"Paris\\\"}\"}"
     "\n</tool_call>", "expected {\"name\""),
    ("<tool_call>\n{\"name\": \"get_weather\"}\n</tool_call>", "expected {\"name\""),
])
def test_malformed_blocks_score_zero(text, why):
    v = judge(WEATHER, text)
    assert v.score == 0.0 and v.detail["reason"] == "malformed" and why in v.detail["message"]
    # a malformed block next to a good call still fails, and so does an irrelevance record
    assert score(WEATHER, block("get_weather", {"city": "Paris"}), text) == 0.0
    assert score([], text) == 0.0


def test_parse_calls_keeps_order_and_rejects_bad_blocks():
    text = block("a", {"x": 1}) + " prose " + block("b", {})
    assert parse_calls(text) == [{"name": "a", "arguments": {"x": 1}},
                                 {"name": "b", "arguments": {}}]
    with pytest.raises(Malformed):
        parse_calls("<tool_call>{}</tool_call>")


@pytest.mark.parametrize("record, problem", [
    ({"answer": []}, 'field "tools" is required'),
    ({"tools": "not json", "answer": []}, 'field "tools" is a string but not JSON'),
    ({"tools": [{"name": 3}], "answer": []}, 'field "tools[0]"'),
    ({"tools": [fn("f", {"a": {"type": "str"}}, [])], "answer": []},
     'field "tools[0].parameters.properties.a.type" must be one of'),
    ({"tools": [fn("f", {}, ["a"])], "answer": []},
     'field "tools[0].parameters.required" names [\'a\'] that "properties" does not declare'),
    ({"tools": TOOLS}, 'field "answer" is required'),
    ({"tools": TOOLS, "answer": {"get_weather": {}}}, 'field "answer" must be a list'),
    ({"tools": TOOLS, "answer": [{"get_weather": {"city": "Paris"}}]},
     'field "answer[0].get_weather" must map each parameter to a non-empty list'),
    ({"tools": TOOLS, "answer": [{"get_weather": {}, "convert": {}}]}, "exactly one key"),
    ({"tools": TOOLS, "answer": [{"book_flight": {}}]}, "calls 'book_flight', which is not in"),
])
def test_records_that_break_the_contract_cannot_be_judged(record, problem):
    assert problem in contract_problems(record)[0]
    v = verify_batch([{**record, "completion": DONE}])[0]
    assert v.score is None and problem in v.error


def test_bfcl_function_docs_and_json_string_fields_are_accepted():
    """BFCL's own data: bare {name, parameters} docs with its type names (dict, float, tuple),
    and tools/answer stored as JSON strings."""
    tools = [{"name": "area", "parameters": {"type": "dict", "properties": {
        "base": {"type": "float"}, "dims": {"type": "tuple", "items": {"type": "integer"}}},
        "required": ["base"]}}]
    answer = [{"area": {"base": [10.0], "dims": [[2, 3], ""]}}]
    call = block("area", {"base": 10, "dims": [2, 3]})
    assert score(answer, call, tools=tools) == 1.0
    assert score(json.dumps(answer), call, tools=json.dumps(tools)) == 1.0


def test_a_missing_completion_cannot_be_judged():
    v = verify_batch([{"tools": TOOLS, "answer": WEATHER}])[0]
    assert v.score is None and "completion" in v.error


def test_trl_reward_function_reads_the_tools_and_answer_columns():
    good = DONE + block("get_weather", {"city": "Paris"})
    # Arrow cannot hold [..., ""] next to numbers, so a datasets column holds JSON strings
    rewards = tool_call_reward([good, DONE + "sunny", good],
                               tools=[json.dumps(TOOLS)] * 3,
                               answer=[json.dumps(WEATHER), json.dumps(WEATHER), "[{}]"])
    assert rewards == [1.0, 0.0, None]
    assert tool_call_reward.__name__ == "tool_call_reward"


def test_the_reward_router_scores_tool_call_records_with_the_recipe_weight():
    from qwqrl.config import RewardsConfig
    from qwqrl.rewards import RewardRouter

    router = RewardRouter(RewardsConfig(tool_call={"weight": 0.5}), max_new_tokens=64)
    assert router.tasks() == {"tool_call"}
    rows = [{"task": "tool_call", "tools": TOOLS, "answer": WEATHER, "completion": c}
            for c in (DONE + block("get_weather", {"city": "Paris"}), DONE + "sunny", "thinking")]
    scored = router.score(rows + [dict(rows[0], answer=[{"nope": {}}])])
    assert scored.rewards == [0.5, 0.0, 0.0, None]
    assert scored.per_verifier["tool_call"] == [1.0, 0.0, 0.0, None]


def test_held_out_evaluation_judges_tool_call_records():
    from qwqrl.evaluation import Completion, judge

    rows = [{"task": "tool_call", "tools": TOOLS, "answer": WEATHER}]
    completions = [Completion(0, 0, DONE + block("get_weather", {"city": "Paris"})),
                   Completion(0, 1, DONE + "sunny")]
    assert [v.score for v in judge("tool_call", rows, completions, think_opened=True)] == [1.0, 0.0]

"""BFCL's non-live AST categories: the suites read BFCL's own files (answers joined from
possible_answer/ by id), the tool_call verifier judges them, each category's accuracy is its
avg@1, and BFCL's non-live overall is the unweighted mean of simple, multiple, parallel and
parallel_multiple (irrelevance is not part of it)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from qwqrl.config import EvalConfig
from qwqrl.data.converters import CONVERTERS
from qwqrl.errors import UserError
from qwqrl.eval_output import eval_json, table
from qwqrl.eval_suites import SUITES, get_suites, load_suite, overall_metrics
from qwqrl.evaluation import Completion, judge, suite_result

CATEGORIES = {"bfcl-simple": "simple", "bfcl-multiple": "multiple", "bfcl-parallel": "parallel",
              "bfcl-parallel-multiple": "parallel_multiple", "bfcl-irrelevance": "irrelevance"}


def bfcl_files(tmp_path: Path, name: str) -> Path:
    """BFCL's layout for one category, from the fixture rows of that category: questions in
    BFCL_v3_<name>.json, answers (not for irrelevance) in possible_answer/ of the same name."""
    rows = [r for r in CONVERTERS["bfcl"].fixture_rows() if r["id"].rsplit("_", 1)[0] == name]
    questions = tmp_path / f"BFCL_v3_{name}.json"
    questions.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "ground_truth"})
                                 + "\n" for r in rows))
    if name != "irrelevance":
        (tmp_path / "possible_answer").mkdir(exist_ok=True)
        (tmp_path / "possible_answer" / questions.name).write_text("".join(
            json.dumps({"id": r["id"], "ground_truth": r["ground_truth"]}) + "\n" for r in rows))
    return questions


def gold_completion(answer: list[dict]) -> str:
    """The expected calls written as the model would: each parameter's first acceptable value,
    the optional ones ("" accepted) left out."""
    blocks = []
    for call in answer:
        (name, params), = call.items()
        args = {p: values[0] for p, values in params.items() if values[0] != ""}
        blocks.append(f'<tool_call>\n{json.dumps({"name": name, "arguments": args})}\n</tool_call>')
    return "I will call the tools.</think>\n" + "\n".join(blocks)


def test_the_bfcl_group_names_the_five_non_live_ast_suites() -> None:
    assert [s.name for s in get_suites("bfcl")] == list(CATEGORIES)
    assert all(s.task == "tool_call" and s.converter == "bfcl" for s in get_suites("bfcl"))


def test_a_recipe_gives_bfcl_suites_their_files() -> None:
    with pytest.raises(ValueError, match=r"no default data: give each a file in eval.suite_data"):
        EvalConfig(suites=["bfcl-simple"])
    with pytest.raises(ValueError, match=r"eval.suite_data names \['ifeval'\]"):
        EvalConfig(suites=["bfcl-simple"], suite_data={"bfcl-simple": "a.json", "ifeval": "b.json"})
    assert EvalConfig(suites=["bfcl-simple"], suite_data={"bfcl-simple": "a.json"})


@pytest.mark.parametrize("suite_name", list(CATEGORIES))
def test_each_category_loads_from_bfcl_layout_and_gold_calls_score_one(tmp_path: Path,
                                                                       suite_name: str) -> None:
    questions = bfcl_files(tmp_path, CATEGORIES[suite_name])
    data = load_suite(SUITES[suite_name], tmp_path, data=str(questions))
    if suite_name == "bfcl-irrelevance":
        assert all(r["answer"] == [] for r in data.records)
    assert not list(tmp_path.glob("qwqrl-joined-*"))
    completions = [Completion(i, 0, gold_completion(r["answer"])) for i, r in enumerate(data.records)]
    verdicts = judge("tool_call", data.records, completions, think_opened=True)
    result = suite_result(data, completions, verdicts)
    assert result.metrics()[f"{suite_name}/avg@1"] == 1.0


def test_a_question_without_an_answer_file_or_answer_is_named(tmp_path: Path) -> None:
    questions = bfcl_files(tmp_path, "simple")
    answers = tmp_path / "possible_answer" / questions.name
    answers.write_text("")
    with pytest.raises(UserError, match="has no answer for id 'simple_0'"):
        load_suite(SUITES["bfcl-simple"], tmp_path, data=str(questions))
    answers.unlink()
    with pytest.raises(UserError, match="possible_answer/ beside the questions"):
        load_suite(SUITES["bfcl-simple"], tmp_path, data=str(questions))


def test_non_live_overall_is_the_unweighted_mean_of_the_four_ast_categories() -> None:
    metrics = {"bfcl-simple/avg@1": 0.9, "bfcl-multiple/avg@1": 0.8, "bfcl-parallel/avg@1": 0.5,
               "bfcl-parallel-multiple/avg@1": 0.2, "bfcl-irrelevance/avg@1": 0.0}
    assert overall_metrics(metrics) == {"bfcl-non-live/overall": pytest.approx(0.6)}
    del metrics["bfcl-parallel/avg@1"]  # BFCL shows N/A for a missing category: so do we
    assert overall_metrics(metrics) == {}


def test_the_table_and_eval_json_carry_the_overall(tmp_path: Path) -> None:
    results = []
    for suite_name, category in list(CATEGORIES.items())[:4]:
        data = load_suite(SUITES[suite_name], tmp_path, data=str(bfcl_files(tmp_path, category)))
        right = suite_name != "bfcl-parallel"  # wrong calls: no call at all
        completions = [Completion(i, 0, gold_completion(r["answer"]) if right else "no.</think>")
                       for i, r in enumerate(data.records)]
        verdicts = judge("tool_call", data.records, completions, think_opened=True)
        results.append(suite_result(data, completions, verdicts))
    assert eval_json(results, {})["bfcl-non-live/overall"] == pytest.approx(0.75)
    assert [line.split()[-2:] for line in table(results).splitlines()
            if line.startswith("BFCL non-live")] == [["overall", "75.0"]]

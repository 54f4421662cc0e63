"""Each converter on rows written in its dataset's own schema (the shipped fixtures): the exact
records it makes, the rows it skips and why, and that every record passes the record checks."""
from __future__ import annotations

import base64
import fnmatch
import json
import pickle
import tomllib
import zlib
from collections import OrderedDict
from pathlib import Path

import pytest

from qwqrl.config import DataSource
from qwqrl.data.converters import CONVERTERS, FIXTURES, SkipRow
from qwqrl.data.records import dry_run, validate_record

ROOT = Path(__file__).resolve().parents[2]


def run(name: str) -> tuple[list[dict], list]:
    """(rows, outputs): each output a record, or the SkipRow reason as a string."""
    rows = CONVERTERS[name].fixture_rows()
    outputs = []
    for row in rows:
        try:
            outputs.append(CONVERTERS[name].fn(row))
        except SkipRow as e:
            outputs.append(str(e))
    return rows, outputs


def test_openr1_math_takes_problem_and_answer_and_skips_proofs():
    rows, out = run("openr1_math")
    assert out == [
        {"task": "math", "prompt": rows[0]["problem"], "answer": "24", "id": rows[0]["uuid"]},
        {"task": "math", "prompt": rows[1]["problem"], "answer": "2,3", "id": rows[1]["uuid"]},
        "no final answer to check (proof or not found)",
        {"task": "math", "prompt": rows[3]["problem"], "answer": "\\frac{5}{6}",
         "id": rows[3]["uuid"]},
    ]


def test_aime_ids_name_the_year_so_2024_and_2025_never_collide():
    rows, out = run("aime")
    assert out == [
        {"task": "math", "prompt": rows[0]["problem"], "answer": "204", "id": "aime2024-60"},
        {"task": "math", "prompt": rows[1]["problem"], "answer": "113", "id": "aime2024-61"},
        {"task": "math", "prompt": rows[2]["problem"], "answer": "70", "id": "aime2025-0"},
    ]


def test_math500_keeps_subject_and_level():
    rows, out = run("math500")
    assert out[0] == {"task": "math", "prompt": rows[0]["problem"],
                      "answer": "\\left( 3, \\frac{\\pi}{2} \\right)",
                      "id": "test/precalculus/807.json", "subject": "Precalculus", "level": 2}
    assert [r["answer"] for r in out] == ["\\left( 3, \\frac{\\pi}{2} \\right)",
                                          "\\frac{14}{3}", "9"]


def test_codeforces_official_tests_and_limits_and_what_it_cannot_judge():
    rows, out = run("codeforces")
    first = out[0]
    assert set(first) == {"id", "task", "prompt", "tests", "limits"}
    assert (first["id"], first["task"]) == ("1016/A", "code")
    assert first["tests"] == {"type": "stdio", "cases": [
        {"input": "3 5\n3 7 9\n", "output": "0 2 1 \n"},
        {"input": "4 20\n10 9 19 2\n", "output": "0 0 1 1 \n"}]}
    assert first["limits"] == {"time_s": 2.0, "memory_mb": 256}
    # the statement as Codeforces shows it, examples included
    assert first["prompt"].startswith("# Death Note\n\nTime limit per test: 2 seconds\n"
                                      "Memory limit per test: 256 megabytes\n\nYou received")
    assert "## Input\n\nThe first line" in first["prompt"]
    assert "## Example 1\n\nInput:\n```\n3 5\n3 7 9\n```\n\nOutput:\n```\n0 2 1\n```" in first["prompt"]
    assert "## Note\n\nIn the first example" in first["prompt"]
    assert out[1:3] == ["custom output checker (several answers accepted)", "interactive problem"]
    # verifiable-prompts: open-r1's own prompt and the language it asks for
    assert out[3]["prompt"] == rows[3]["prompt"] and out[3]["language"] == "cpp"
    for change, reason in (({"input_mode": "file"}, "reads its input from a file"),
                           ({"description": None}, "no problem statement")):
        with pytest.raises(SkipRow, match=reason):
            CONVERTERS["codeforces"].fn({**rows[0], **change})


def test_deepcoder_reads_each_test_layout():
    rows, out = run("deepcoder")
    assert out[0] == {"task": "code", "prompt": rows[0]["problem"], "tests": {
        "type": "stdio", "cases": [{"input": "3\n1 2 3\n", "output": "6\n"},
                                   {"input": "1\n-5\n", "output": "-5\n"}]}}
    # LiveCodeBench functional: one JSON value per input line, the method of class Solution
    assert out[1]["tests"] == {"type": "call", "fn_name": "countPairs", "cases": [
        {"args": [[1, 2, 1, 1]], "expected": 3}, {"args": [[5]], "expected": 0}]}
    assert out[1]["prompt"].startswith(rows[1]["problem"])
    assert rows[1]["starter_code"].rstrip() in out[1]["prompt"]
    assert out[2]["tests"]["cases"] == [{"input": "1 2\n", "output": "3\n"},
                                        {"input": "10 -4\n", "output": "6\n"}]
    assert out[3] == {"task": "code", "prompt": rows[3]["problem"], "input_output": {
        "inputs": [[1, 2], [0, 0]], "outputs": [[3], [0]], "fn_name": "add"}}


def test_livecodebench_decodes_private_cases_and_keeps_the_contest_date():
    rows, out = run("livecodebench")
    assert out[0] == {"id": "abc301_a", "task": "code", "prompt": rows[0]["question_content"],
                      "tests": {"type": "stdio", "cases": [{"input": "1 2\n", "output": "3\n"},
                                                           {"input": "100 200\n",
                                                            "output": "300\n"}]},
                      "contest_date": "2023-05-13", "platform": "atcoder", "difficulty": "easy"}
    assert out[1]["contest_date"] == "2024-08-10"
    # public case, then the private one from the base64 + zlib + pickle blob
    assert out[1]["tests"] == {"type": "call", "fn_name": "countTarget", "cases": [
        {"args": [[1, 2, 1], 1], "expected": 2}, {"args": [[3, 3], 3], "expected": 2}]}


def test_livecodebench_private_cases_never_unpickle_objects():
    row = dict(CONVERTERS["livecodebench"].fixture_rows()[1])
    row["private_test_cases"] = base64.b64encode(zlib.compress(pickle.dumps(OrderedDict()))).decode()
    with pytest.raises(ValueError, match="refusing to unpickle collections.OrderedDict"):
        CONVERTERS["livecodebench"].fn(row)


def test_ifeval_drops_the_nulls_of_hub_structs_and_parses_json_kwargs():
    rows, out = run("ifeval")
    assert out[0] == {"task": "ifeval", "prompt": rows[0]["prompt"], "id": 1000,
                      "instruction_id_list": ["punctuation:no_comma",
                                              "detectable_format:number_highlighted_sections",
                                              "length_constraints:number_words"],
                      "kwargs": [{}, {"num_highlights": 3},
                                 {"relation": "at least", "num_words": 300}]}
    assert out[2] == {"task": "ifeval", "prompt": rows[2]["prompt"], "id": 6,
                      "instruction_id_list": ["change_case:english_lowercase",
                                              "keywords:existence"],
                      "kwargs": [{}, {"keywords": ["waves", "salt"]}]}


def test_ifeval_records_are_judged_by_the_ifeval_verifier():
    from qwqrl.verifiers.ifeval.verifier import verify

    _, out = run("ifeval")
    poem = "</think>\nthe waves come in\nthe salt stays on my lips"
    verdict = verify(out[2], poem)
    assert verdict.score == 1.0 and verdict.detail["followed"] == [True, True]
    assert verify(out[2], "</think>\nThe Waves come in").detail["followed"] == [False, False]


def test_mixture_of_thoughts_splits_the_conversation_for_sft():
    rows, out = run("mixture_of_thoughts")
    assert out[0] == {"task": "general", "source": "open-r1/OpenR1-Math-220k",
                      "prompt": [{"role": "user", "content": rows[0]["messages"][0]["content"]}],
                      "completion": "Seven eights are fifty-six.\n</think>\n\n"
                                    "$7 \\times 8 = \\boxed{56}$"}
    assert [m["role"] for m in out[1]["prompt"]] == ["system", "user"]
    assert all(not r["completion"].startswith("<think>") for r in out)


def test_ultrafeedback_keeps_the_prompt_only():
    rows, out = run("ultrafeedback")
    assert out == [{"id": r["prompt_id"], "task": "general", "prompt": r["prompt"]} for r in rows]


@pytest.mark.parametrize("name", sorted(CONVERTERS))
def test_every_converter_makes_valid_records_of_its_fixture_rows(name):
    rows, out = run(name)
    assert len(rows) >= 3
    records = [r for r in out if isinstance(r, dict)]
    assert records and all(validate_record(r) == [] for r in records)
    assert dry_run(DataSource(hub="some/set", converter=name)) == []


def test_fixture_rows_are_package_data():
    """`recipe check` reads the fixtures from the installed package, so installs must carry them."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    globs = config["tool"]["setuptools"]["package-data"]["qwqrl.data.converters"]
    for converter in CONVERTERS.values():
        assert (FIXTURES / converter.fixture).is_file()
        assert any(fnmatch.fnmatch(f"fixtures/{converter.fixture}", g) for g in globs)


def test_dry_run_reports_the_fixture_line_when_the_task_contradicts_the_converter():
    problems = dry_run(DataSource(hub="some/set", converter="openr1_math", task="code"))
    assert problems[0] == ('fixtures/openr1_math.jsonl:1: field "tests" (or APPS/TACO '
                           '"input_output") is required for task "code"')
    assert len(problems) == 3  # the proof row is skipped, not reported

"""`qwqrl score`: one output line per input line, in order, whatever the lines hold."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from qwqrl import score as score_module
from qwqrl.cli import main
from qwqrl.verifiers import registry

DONE = "reasoning\n</think>\n"


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


MIXED = [
    {"id": 1, "task": "math", "answer": "\\frac12", "completion": DONE + "$\\boxed{0.5}$"},
    {"id": 2, "task": "math", "answer": "17", "completion": DONE + "The answer is 18."},
    "{not json",
    {"id": 4, "task": "math", "answer": "42", "completion": "never closed \\boxed{42}"},
    [1, 2, 3],
    {"id": 6, "task": "astrology", "completion": DONE + "Leo"},
    {"id": 7, "task": "math", "answer": "3"},
    {"id": 8, "task": "ifeval", "instruction_id_list": ["change_case:english_lowercase"],
     "kwargs": [{}], "completion": DONE + "all lower case here."},
    {"id": 9, "completion": DONE + "no task"},
    "",
    {"id": 11, "task": "math", "answer": "C", "completion": DONE + '{"answer": "C"}'},
]


@pytest.fixture
def mixed_file(tmp_path: Path) -> Path:
    return write_lines(tmp_path / "in.jsonl",
                       [r if isinstance(r, str) else json.dumps(r) for r in MIXED])


def test_every_line_gets_one_output_line_in_order_with_scores_details_and_errors(
        mixed_file: Path, tmp_path: Path, capsys):
    out = tmp_path / "out.jsonl"
    assert main(["score", str(mixed_file), "-o", str(out)]) == 0
    got = records(out)
    assert len(got) == len(MIXED)
    by_line = dict(enumerate(got, 1))
    assert by_line[1] == {**MIXED[0], "score": 1.0,
                          "detail": {"verifier": "math", "extracted": "0.5"}}
    assert by_line[2]["score"] == 0.0 and by_line[2]["id"] == 2
    assert by_line[3]["score"] is None and "line 3" in by_line[3]["error"]
    assert by_line[4]["score"] == 0.0 and by_line[4]["detail"]["reason"] == "unfinished"
    assert by_line[5]["score"] is None and "JSON object" in by_line[5]["error"]
    assert by_line[6]["score"] is None and "astrology" in by_line[6]["error"]
    assert by_line[7]["score"] is None and "completion" in by_line[7]["error"]
    assert by_line[8]["score"] == 1.0 and by_line[8]["detail"]["followed"] == [True]
    assert by_line[8]["detail"]["followed_loose"] == [True]
    assert by_line[9]["score"] is None and "unknown task None" in by_line[9]["error"]
    assert by_line[10]["score"] is None and "line 10" in by_line[10]["error"]
    assert by_line[11]["score"] == 1.0
    assert all("error" not in by_line[i] for i in (1, 2, 4, 8, 11))
    table = capsys.readouterr().err
    assert "math" in table and "mean score" in table and "(invalid)" in table


def test_blocks_smaller_than_the_file_keep_the_order(mixed_file: Path, tmp_path: Path):
    out_small, out_big = tmp_path / "small.jsonl", tmp_path / "big.jsonl"
    assert main(["score", str(mixed_file), "-o", str(out_small), "--batch-size", "2"]) == 0
    assert main(["score", str(mixed_file), "-o", str(out_big)]) == 0
    assert out_small.read_text() == out_big.read_text()


def test_a_missing_input_file_is_a_user_error_with_exit_2(tmp_path: Path, capsys):
    assert main(["score", str(tmp_path / "nope.jsonl"), "-o", str(tmp_path / "o.jsonl")]) == 2
    assert "nope.jsonl" in capsys.readouterr().err


def test_a_failing_run_leaves_the_previous_output_untouched_and_no_temp_file(
        mixed_file: Path, tmp_path: Path, monkeypatch):
    out = tmp_path / "out.jsonl"
    out.write_text("previous\n")

    def explode(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(score_module, "score_block", explode)
    assert main(["score", str(mixed_file), "-o", str(out)]) == 130
    assert out.read_text() == "previous\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "out.jsonl"]


def test_a_verifier_that_raises_nulls_its_records_and_the_rest_are_still_scored(
        mixed_file: Path, tmp_path: Path, monkeypatch):
    real = score_module.verify_batch

    def ifeval_broken(name, records, **options):
        if name == "ifeval":
            raise RuntimeError("verifier bug")
        return real(name, records, **options)

    monkeypatch.setattr(score_module, "verify_batch", ifeval_broken)
    out = tmp_path / "out.jsonl"
    assert main(["score", str(mixed_file), "-o", str(out)]) == 0
    got = records(out)
    assert got[7]["score"] is None and "verifier bug" in got[7]["error"]
    assert got[0]["score"] == 1.0


def test_registry_routes_each_task_to_its_verifier_and_names_the_known_ones():
    assert {t: registry.verifier_for_task(t) for t in ("math", "code", "ifeval", "general")} == \
        {"math": "math", "code": "code", "ifeval": "ifeval", "general": "general"}
    with pytest.raises(KeyError, match="known: code, general, ifeval, math"):
        registry.verifier_for_task("poetry")
    with pytest.raises(KeyError, match="unknown verifier 'poetry'"):
        registry.verify_batch("poetry", [])


def test_registry_batch_api_judges_records_in_order_sync_and_async():
    import asyncio

    records = [{"answer": "2", "completion": DONE + "$\\boxed{2}$"},
               {"answer": "2", "completion": DONE + "$\\boxed{3}$"},
               {"completion": "no close"}]
    assert [v.score for v in registry.verify_batch("math", records[:2])] == [1.0, 0.0]
    assert [v.score for v in registry.verify_batch("format", records)] == [1.0, 1.0, 0.0]
    overlong = asyncio.run(registry.averify_batch("overlong", records, max_len=10, buffer=5,
                                                  chars_per_token=1))
    assert [v.score for v in overlong] == [-1.0, -1.0, -0.6]
    math_async = asyncio.run(registry.averify_batch("math", records[:2]))
    assert [v.score for v in math_async] == [1.0, 0.0]


def test_tool_call_records_are_judged_with_their_calls_in_the_detail(tmp_path: Path):
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
    call = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "paris"}}\n</tool_call>'
    base = {"task": "tool_call", "tools": tools, "answer": [{"get_weather": {"city": ["Paris"]}}]}
    rows = [dict(base, completion=DONE + call),
            dict(base, completion=DONE + "It is sunny."),
            dict(base, completion=call),  # the call sits in unfinished reasoning
            dict(base, answer=[], completion=DONE + "No tool can do that."),
            dict(base, answer=[{"book": {}}], completion=DONE + call),
            dict(base, completion=call + "\n</think>\n" + call.replace("</tool_call>", ""))]
    src = write_lines(tmp_path / "in.jsonl", [json.dumps(r) for r in rows])
    out = tmp_path / "out.jsonl"
    assert main(["score", str(src), "-o", str(out)]) == 0
    got = records(out)
    assert [r["score"] for r in got] == [1.0, 0.0, 0.0, 1.0, None, 0.0]
    assert got[0]["detail"] == {"verifier": "tool_call", "calls": [
        {"name": "get_weather", "arguments": {"city": "paris"}}]}
    assert [r["detail"].get("reason") for r in got] == [
        None, "wrong_count", "unfinished", None, None, "malformed"]
    assert "'book', which is not in" in got[4]["error"]
    unopened = tmp_path / "unopened.jsonl"
    assert main(["score", str(src), "-o", str(unopened), "--no-think-opened"]) == 0
    assert records(unopened)[2]["score"] == 1.0  # no think tags: judged whole

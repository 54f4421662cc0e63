"""`qwqrl eval --responses`: completions made elsewhere, judged by the suite's verifier, with
bad input named by file and line."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from qwqrl.cli import main


def write(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_records_without_a_suite_are_grouped_by_task(tmp_path: Path) -> None:
    data = write(tmp_path / "held_out.jsonl", [
        {"id": "a", "task": "math", "prompt": "1+1?", "answer": "2"},
        {"id": "b", "task": "math", "prompt": "2+2?", "answer": "4"}])
    responses = write(tmp_path / "responses.jsonl", [
        {"id": "a", "completion": "</think>\\boxed{2}"}, {"id": "a", "completion": "</think>\\boxed{3}"},
        {"id": "b", "completion": "</think>\\boxed{4}"}, {"id": "b", "completion": "no answer"}])
    assert main(["eval", "--data", data, "--responses", responses, "-o", str(tmp_path / "out")]) == 0
    result = json.loads((tmp_path / "out" / "eval.json").read_text())
    assert result["math/avg@2"] == 0.5 and result["math/pass@2"] == 1.0
    samples = [json.loads(x) for x in (tmp_path / "out" / "samples.jsonl").read_text().splitlines()]
    assert [(s["id"], s["sample"], s["verdict"]) for s in samples] == [
        ("a", 0, True), ("a", 1, False), ("b", 0, True), ("b", 1, False)]


@pytest.mark.parametrize(("lines", "message"), [
    (['{"prompt": "p", "response": "r"}', "{oops"], "responses.jsonl:2: not JSON"),
    (['{"prompt": "p"}'], 'responses.jsonl:1: expected {"prompt": str, "response": str}'),
    (['{"prompt": "p", "response": "r"}', '{"id": 1, "completion": "c"}'], "mixes prompt/response"),
])
def test_bad_response_files_are_named(tmp_path: Path, capsys: pytest.CaptureFixture,
                                      lines: list[str], message: str) -> None:
    data = write(tmp_path / "d.jsonl", [{"id": 1, "task": "math", "prompt": "p", "answer": "1"}])
    (tmp_path / "responses.jsonl").write_text("\n".join(lines) + "\n")
    assert main(["eval", "--data", data, "--responses", str(tmp_path / "responses.jsonl")]) == 2
    assert message in capsys.readouterr().err


def test_output_is_a_folder_not_a_json_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["eval", "--suite", "tiny-math", "--responses", "r.jsonl", "-o", "m.json"]) == 2
    assert "-o names a folder" in capsys.readouterr().err

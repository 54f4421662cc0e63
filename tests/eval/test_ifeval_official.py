"""`qwqrl eval --suite ifeval --data input_data.jsonl --responses input_response_data.jsonl`
on a pair of files in google-research's own formats, against accuracies worked out by hand.

The five prompts (fixtures/ifeval_*.jsonl), and what each response does:
1001 postscript       the later of two lines for this prompt wins (it has a P.S.)  strict T, loose T
1002 no_comma         "Hello there, friend." has a comma                          strict F, loose F
1003 quotation        a lead-in line, then the quoted title                       strict F, loose T
                      (loose drops the first line)
1004 title, <10 words "<<My Title>>" and six words                               strict T T, loose T T
1005 2 highlights,    two *highlights*, but a comma                               strict T F, loose T F
     no_comma
Prompt level: strict 2/5, loose 3/5. Instruction level: strict 4/7, loose 5/7.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from qwqrl.cli import main

FIXTURES = Path(__file__).parent / "fixtures"


def expected_block(path: str, startend: str) -> str:
    prompt, inst = ("0.4", "0.5714285714285714") if startend == "0.0" else ("0.6", "0.7142857142857143")
    return "\n".join([
        "=" * 64, f"{path} Accuracy Scores:",
        f"prompt-level: {prompt}", f"instruction-level: {inst}", "",
        "detectable_content 1.0", "detectable_format 1.0", "length_constraints 1.0",
        "punctuation 0.0", f"startend {startend}", "",
        "detectable_content:postscript 1.0", "detectable_format:number_highlighted_sections 1.0",
        "detectable_format:title 1.0", "length_constraints:number_words 1.0",
        "punctuation:no_comma 0.0", f"startend:quotation {startend}",
    ])


def test_official_files_give_the_official_printout_and_eval_json(
        tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code = main(["eval", "--suite", "ifeval", "--data", str(FIXTURES / "ifeval_input_data.jsonl"),
                 "--responses", str(FIXTURES / "ifeval_input_response_data.jsonl"), "-o", "out/"])
    assert code == 0
    printed = capsys.readouterr().out
    official = expected_block("out/eval_results_strict.jsonl", "0.0") + "\n" + \
        expected_block("out/eval_results_loose.jsonl", "1.0") + "\n"
    assert printed.startswith(official)

    result = json.loads((tmp_path / "out" / "eval.json").read_text())
    assert result["ifeval/prompt_strict"] == pytest.approx(2 / 5)
    assert result["ifeval/inst_strict"] == pytest.approx(4 / 7)
    assert result["ifeval/prompt_loose"] == pytest.approx(3 / 5)
    assert result["ifeval/inst_loose"] == pytest.approx(5 / 7)
    assert result["suites"]["ifeval"]["problems"] == 5

    # the official script's own result files, one line per prompt
    strict = [json.loads(x) for x in (tmp_path / "out" / "eval_results_strict.jsonl").read_text().splitlines()]
    assert [o["follow_instruction_list"] for o in strict] == [[True], [False], [False], [True, True], [True, False]]
    assert strict[0]["response"].endswith("P.S. See you in the fall.")
    samples = [json.loads(x) for x in (tmp_path / "out" / "samples.jsonl").read_text().splitlines()]
    assert [s["verdict"] for s in samples] == [True, False, False, True, False]
    assert samples[2]["detail"]["followed_loose"] == [True]


def test_a_prompt_without_response_is_an_error_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    responses = tmp_path / "responses.jsonl"
    lines = (FIXTURES / "ifeval_input_response_data.jsonl").read_text().splitlines()
    responses.write_text("\n".join(x for x in lines if "Suggest a title" not in x) + "\n")
    code = main(["eval", "--suite", "ifeval", "--data", str(FIXTURES / "ifeval_input_data.jsonl"),
                 "--responses", str(responses)])
    assert code == 2
    err = capsys.readouterr().err
    assert "no response for 1 of 5 prompts" in err and "Suggest a title" in err


def test_completions_without_think_close_are_unfinished_unless_told(tmp_path: Path) -> None:
    """Our id/completion form is judged as `qwqrl score` judges it."""
    record = json.loads((FIXTURES / "ifeval_input_data.jsonl").read_text().splitlines()[3])
    data = tmp_path / "data.jsonl"
    data.write_text(json.dumps({**record, "id": "1004"}) + "\n")
    ours = tmp_path / "completions.jsonl"
    ours.write_text(json.dumps({"id": "1004", "completion": "<<My Title>>\nA very short answer."}) + "\n")
    for flags, expected in (([], 0.0), (["--no-think-opened"], 1.0)):
        out = tmp_path / f"out{len(flags)}"
        assert main(["eval", "--suite", "ifeval", "--data", str(data), "--responses", str(ours),
                     "-o", str(out), *flags]) == 0
        assert json.loads((out / "eval.json").read_text())["ifeval/prompt_strict"] == expected

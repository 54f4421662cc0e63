import itertools
import re
import subprocess
import sys
import types
from pathlib import Path
from statistics import mean

import pytest

from qwqrl.config import DataSource
from qwqrl.data import load_source
from qwqrl.data.synthetic import (GENERATORS, IFEVAL_WRITERS, addition_trace, arithmetic, code,
                                  code_tasks, ifeval_reference, subtraction_trace, word_problems)
from qwqrl.errors import UserError
from qwqrl.verifiers import math as math_verifier
from qwqrl.verifiers.ifeval import verifier as ifeval_verifier
from qwqrl.verifiers.registry import verify_batch

BOXED = re.compile(r"\\boxed\{([^}]*)\}")


def answer_part(completion: str) -> str:
    reasoning, sep, answer = completion.partition("\n</think>\n\n")
    assert sep and reasoning and "</think>" not in answer
    return answer


@pytest.mark.parametrize("name", ["arithmetic", "word_problems", "code"])
def test_records_pass_validation_and_stay_short(name):
    records = load_source(DataSource(synthetic=name, options={"n": 300, "seed": 4}), Path("."))
    assert len(records) == 300
    assert max(len(r["prompt"]) for r in records) <= 45
    assert max(len(r["completion"].encode()) for r in records) <= 88
    assert mean(len(r["completion"].encode()) for r in records) <= 70


@pytest.mark.parametrize("name", ["arithmetic", "word_problems", "code"])
def test_deterministic_in_n_and_seed(name):
    fn = GENERATORS[name]
    assert fn(50, 1) == fn(50, 1)
    assert fn(50, 1) != fn(50, 2)


@pytest.mark.parametrize("fn", [arithmetic, word_problems])
def test_boxed_answer_equals_gold(fn):
    for record in fn(500, 0):
        (boxed,) = BOXED.findall(answer_part(record["completion"]))
        assert boxed == record["answer"]
        op, a, b = problem(record)
        assert int(record["answer"]) == (a - b if op == "-" else a + b)


def test_traces():
    assert addition_trace(478, 356) == "8+6=14\n7+5+1=13\n4+3+1=8"
    assert addition_trace(5, 123) == "5+3=8\n0+2=2\n0+1=1"
    assert subtraction_trace(52, 27) == "12-7=5\n5-2-1=2"
    assert subtraction_trace(100, 99) == "10-9=1\n10-9-1=0\n1-0-1=0"


def problem(record: dict) -> tuple[str, int, int]:
    """The problem behind a prompt: ("-", a, b), or ("+", smaller, larger) as a+b == b+a."""
    a, word, b = re.search(r"(\d+)\D*?(gets|loses|\+)\D*?(\d+)", record["prompt"]).groups()
    a, b = int(a), int(b)
    return ("-", a, b) if word == "loses" else ("+", min(a, b), max(a, b))


def problems(records: list[dict]) -> set[tuple[str, int, int]]:
    return {problem(r) for r in records}


def test_train_and_test_splits_never_share_a_problem():
    train = problems(arithmetic(3000, 0, split="train") + arithmetic(3000, 1, split="train"))
    test = arithmetic(500, 0, split="test")
    assert len(problems(test)) == 500 and not train & problems(test)
    assert not problems(word_problems(2000, 0)) & problems(word_problems(300, 0, split="test"))
    assert arithmetic(200, 0, split="test") == test[:200]  # a headline set inside a larger one


def test_digit_range_and_bad_options():
    assert {len(r["prompt"]) for r in arithmetic(30, 0, min_digits=1, max_digits=1)} == {len("What is 1+2?")}
    with pytest.raises(UserError, match="too few exist"):
        arithmetic(30, 0, min_digits=1, max_digits=1, split="test")
    with pytest.raises(UserError, match="min_digits"):
        arithmetic(1, 0, min_digits=3, max_digits=2)
    with pytest.raises(UserError, match="split"):
        arithmetic(1, 0, split="dev")


def run(program: str, stdin: str) -> str:
    done = subprocess.run([sys.executable, "-c", program], input=stdin, capture_output=True,
                          text=True, timeout=5)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_every_code_task_reference_passes_its_own_tests():
    """One subprocess per task and case: the reference programs are ours, run on our inputs."""
    records = code(400, 0, cases=1)
    seen = {}
    for record in records:
        seen.setdefault(record["prompt"], record)
    families = code_tasks()
    all_prompts = {t.prompt for tasks in families.values() for t in tasks}
    assert set(seen) <= all_prompts
    for tasks in families.values():  # every family is drawn; its fixed tasks all appear
        assert {t.prompt for t in tasks} & set(seen)
    for record in [seen[p] for p in sorted(seen)][:40]:
        program = re.fullmatch(r"```python\n(.*)\n```", answer_part(record["completion"]), re.S).group(1)
        for case in record["tests"]["cases"]:
            assert run(program, case["input"]) == case["output"], record["prompt"]


def test_code_families_are_balanced():
    families = {t.prompt.split(" and ")[0] for t in code_tasks()["one integer"]}
    assert families == {"Read an integer"}
    shares = [sum(r["prompt"].startswith(p) for r in code(3000, 0)) / 3000
              for p in ("Read two", "Read an integer", "Read a line")]
    assert shares == pytest.approx([1 / 3] * 3, abs=0.04)


def test_ifeval_reference_follows_the_instructions_it_knows():
    record = {"instruction_id_list": ["change_case:english_lowercase", "startend:end_checker",
                                      "keywords:existence", "length_constraints:number_words"],
              "kwargs": [{}, {"end_phrase": "Any other questions?"}, {"keywords": ["Tea"]},
                         {"num_words": 20, "relation": "at least"}]}
    answer = answer_part(ifeval_reference(record))
    assert answer == answer.lower() and answer.endswith("any other questions?")
    assert "tea" in answer.split() and len(answer.split()) >= 20
    quoted = answer_part(ifeval_reference({
        "instruction_id_list": ["startend:quotation", "detectable_format:title"], "kwargs": [{}, {}]}))
    assert quoted.startswith('"<<') and quoted.endswith('"')
    unknown = {"instruction_id_list": ["detectable_format:json_format"], "kwargs": [{}]}
    assert ifeval_reference(unknown) is None


def test_general_delegates_to_the_reward_model_pairs():
    records = load_source(DataSource(synthetic="general", options={"n": 20, "seed": 0}), Path("."))
    assert all(r["task"] == "general" and answer_part(r["completion"]) for r in records)


def test_ifeval_delegates_to_the_verifier_generator():
    records = load_source(DataSource(synthetic="ifeval", options={"n": 40, "seed": 0}), Path("."))
    assert all(r["task"] == "ifeval" for r in records)
    referenced = [r for r in records if "completion" in r]
    assert referenced and all(v.score == 1.0 for v in verify_batch("ifeval", referenced))


IFEVAL_KWARGS = {
    "detectable_format:title": {}, "combination:repeat_prompt": {"prompt_to_repeat": "Write about tea."},
    "keywords:existence": {"keywords": ["tea", "cup"]},
    "keywords:frequency": {"keyword": "green", "frequency": 3, "relation": "at least"},
    "punctuation:no_comma": {}, "length_constraints:number_words": {"num_words": 30, "relation": "at least"},
    "detectable_content:postscript": {"postscript_marker": "P.S."},
    "startend:end_checker": {"end_phrase": "Is there anything else I can help with?"},
    "change_case:english_lowercase": {}, "change_case:english_capital": {}, "startend:quotation": {},
}


# Instruction pairs no response can follow together.
IFEVAL_CONFLICTS = ({"combination:repeat_prompt", "startend:quotation"},
                    {"change_case:english_lowercase", "change_case:english_capital"})


def test_ifeval_references_pass_the_ifeval_verifier():
    """Every compatible combination of up to three instructions earns the full score."""
    assert set(IFEVAL_KWARGS) == set(IFEVAL_WRITERS)
    for k in (1, 2, 3):
        for ids in itertools.combinations(IFEVAL_KWARGS, k):
            if any(pair <= set(ids) for pair in IFEVAL_CONFLICTS):
                continue
            record = {"task": "ifeval", "prompt": "Write about tea.", "instruction_id_list": list(ids),
                      "kwargs": [IFEVAL_KWARGS[i] for i in ids]}
            completion = ifeval_reference(record)
            assert ifeval_verifier.verify(record, completion).score == 1.0, completion


def test_math_references_pass_the_math_verifier():
    records = arithmetic(20, 0) + word_problems(20, 0)
    assert [v.score for v in math_verifier.verify_batch(records)] == [1.0] * 40


def test_ifeval_keeps_only_references_the_verifier_accepts(monkeypatch):
    """The delegation itself, with a stand-in for the verifier's record generator."""
    sets = [(["change_case:english_lowercase"], [{}]),
            (["combination:repeat_prompt", "startend:quotation"], [{"prompt_to_repeat": "Hi."}, {}]),
            (["detectable_format:json_format"], [{}])]
    fake = types.ModuleType("qwqrl.verifiers.ifeval.synthetic")
    fake.make_records = lambda n, seed, *_: [
        {"prompt": "Hi.", "instruction_id_list": ids, "kwargs": kw} for ids, kw in sets]
    monkeypatch.setitem(sys.modules, fake.__name__, fake)
    records = load_source(DataSource(synthetic="ifeval", options={"n": 3}), Path("."))
    assert [r["task"] for r in records] == ["ifeval"] * 3
    assert ["completion" in r for r in records] == [True, False, False]


def test_code_test_split_holds_out_the_constants_training_never_sees() -> None:
    train = {r["prompt"] for r in code(3000, 0, split="train")}
    test = {r["prompt"] for r in code(300, 1, split="test")}
    assert test and not train & test
    assert all(int(p.rstrip(".").split()[-1]) % 7 == 0 for p in test)

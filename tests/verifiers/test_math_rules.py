"""The math verifier's reward policy, rule by rule, through the real worker pool."""
from __future__ import annotations

import pytest

from qwqrl.verifiers.math import verify, verify_batch

THINK = "<think>\nLet me work this out carefully.\n</think>\n\n"


def done(answer: str) -> str:
    """A finished completion: the template opened <think>, the model closed it and answered."""
    return "Let me work this out carefully.\n</think>\n\n" + answer


def score(gold: str, completion: str, **options) -> float | None:
    return verify({"answer": gold, "completion": completion}, **options).score


# (gold, final answer, expected score)
EQUIVALENT = [
    ("\\frac{1}{2}", "$\\boxed{0.5}$", 1.0),
    ("0.75", "$\\boxed{\\dfrac{3}{4}}$", 1.0),
    ("1000", "$\\boxed{1,000}$", 1.0),
    ("1000", "$\\boxed{1{,}000}$", 1.0),
    ("1000", "$\\boxed{10^3}$", 1.0),
    ("2\\sqrt{2}", "$\\boxed{\\sqrt{8}}$", 1.0),
    ("x^2+2x+1", "$\\boxed{1 + 2x + x^2}$", 1.0),
    ("30^\\circ", "$\\boxed{30}$", 1.0),
    ("30", "$\\boxed{30^\\circ}$", 1.0),
    ("5", "$\\boxed{5 \\text{ cm}}$", 1.0),
    ("2", "$\\boxed{x = 2}$", 1.0),
    ("\\{1, 2, 3\\}", "$\\boxed{\\{3, 1, 2\\}}$", 1.0),
    ("(1, 2]", "$\\boxed{(1,2]}$", 1.0),
    ("\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}",
     "$\\boxed{\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}}$", 1.0),
    ("-5", "$\\boxed{−5}$", 1.0),                      # unicode minus
    ("17", "The final answer is 17", 1.0),
    ("17", "The answer is $17$.", 1.0),
    ("\\frac{\\sqrt{3}}{2}", "So the answer is $\\frac{\\sqrt{3}}{2}$.", 1.0),
    ("2 \\pm \\sqrt{3}", "$\\boxed{2 \\pm \\sqrt{3}}$", 1.0),  # the gold itself has \pm
    ("17", "$\\boxed{17.0}$", 1.0),
    ("-\\frac{3}{4}", "$\\boxed{-0.75}$", 1.0),
    ("\\frac{1}{3}", "$\\boxed{0.333333}$", 1.0),       # math-verify's rounding, off integers
    ("1, 2", "$\\boxed{2, 1}$", 1.0),                  # the gold is a list
    ("\\frac12", "$\\boxed{\\frac{1}{2}}$ and again $\\boxed{0.5}$", 1.0),  # restated, same value
    ("\\{1, 2\\}", "$\\boxed{2}$ and $\\boxed{1}$", 1.0),  # a listed gold, one box per value
    ("-5", "The answer is −5.", 1.0),
    ("\\{-2, 2\\}", "$\\boxed{\\pm 2}$", 1.0),            # a listed gold may be answered with \\pm
    ("-2, 2", "$\\boxed{2 \\text{ or } -2}$", 1.0),
]
DIFFERENT = [
    ("\\frac{1}{2}", "$\\boxed{0.51}$", 0.0),
    ("x^2+2x+1", "$\\boxed{x^2+2x+2}$", 0.0),
    ("\\{1, 2, 3\\}", "$\\boxed{\\{1, 2\\}}$", 0.0),
    ("(1, 2]", "$\\boxed{[1,2]}$", 0.0),
    ("123456789012345678", "$\\boxed{123456789012345679}$", 0.0),  # no tolerance on integers
    ("17", "$\\boxed{17.0000000001}$", 0.0),
    ("17", "$\\boxed{17.5}$", 0.0),
    ("17", "The answer is 17.0000001.", 0.0),
    ("1000000", "$\\boxed{1000001}$", 0.0),
    ("17", "The final answer is 18", 0.0),
    ("17", "I could not solve it.", 0.0),
]


@pytest.mark.parametrize("gold,answer,expected", EQUIVALENT + DIFFERENT)
def test_equivalent_forms_are_accepted_and_different_values_rejected(gold, answer, expected):
    assert score(gold, done(answer)) == expected


HEDGES = [
    ("4", "$\\boxed{4}$ or maybe $\\boxed{5}$"),
    ("4", "$\\boxed{5}$. Actually $\\boxed{4}$"),
    ("4", "The answer is 4 or 5."),
    ("4", "The answer is 4. Or 5."),
    ("x+1", "".join(f"$\\boxed{{x+{k}}}$ " for k in range(12))),  # a shotgun of boxes
    ("4", "$\\boxed{4 \\text{ or } 5}$"),
    ("4", "$\\boxed{4 \\pm 1}$"),
    ("4", "$\\boxed{±4}$"),
    ("4", "$\\boxed{4, 5}$"),
    ("4", "$\\boxed{\\{4, 5\\}}$"),
    ("4", "$\\boxed{[3, 5]}$"),
    ("\\frac{1}{2}", "$\\boxed{0.5}$ or $\\boxed{0.25}$"),
    ("\\frac{1}{2}", "$\\boxed{\\frac{1}{2}, \\frac{1}{3}}$"),
    ("C", "\\boxed{C} or \\boxed{D}"),
    ("C", "The answer is (C) or (D)."),
    ("C", "I pick (C) and (B)."),
    ("C", '{"answer": "C"} {"answer": "D"}'),
]


@pytest.mark.parametrize("gold,answer", HEDGES)
def test_hedging_earns_nothing_even_when_the_gold_is_among_the_answers(gold, answer):
    assert score(gold, done(answer)) == 0.0


def test_one_answer_restated_identically_is_fine():
    assert score("42", done("So $\\boxed{42}$.\n\nFinal answer: $\\boxed{42}$")) == 1.0


def test_reasoning_never_closed_scores_zero_even_with_a_correct_box_inside():
    assert score("42", "I think it is \\boxed{42} because ...") == 0.0
    assert score("42", "<think>\nI think it is \\boxed{42}") == 0.0
    unfinished = verify({"answer": "42", "completion": "\\boxed{42}"})
    assert unfinished.detail["reason"] == "unfinished"


def test_only_the_answer_after_the_last_think_close_is_judged():
    completion = "maybe \\boxed{41}</think> hmm \\boxed{41} </think> So $\\boxed{42}$."
    assert score("42", completion) == 1.0
    assert score("41", completion) == 0.0


def test_without_a_template_opened_think_a_completion_without_tags_is_judged_whole():
    assert score("42", "The answer is $\\boxed{42}$.", think_opened=False) == 1.0
    assert score("42", "<think>\\boxed{42}", think_opened=False) == 0.0


@pytest.mark.parametrize("gold", [
    "We compute $6 \\cdot 7 = 42$, so the answer is $\\boxed{42}$.",
    "First $\\boxed{6}$ boxes... the total is $\\boxed{42}$.",  # the last box is the answer
])
def test_a_full_math_solution_as_gold_is_reduced_to_its_boxed_answer(gold):
    assert score(gold, done("$\\boxed{42}$")) == 1.0
    assert score(gold, done("$\\boxed{6}$")) == 0.0


@pytest.mark.parametrize("answer", [
    "$\\boxed{C}$", "$\\boxed{\\text{(C)}}$", "The correct option is (C).", "The answer is C",
    "The answer is: **C**", '```json\n{"answer": "C"}\n```', '{"answer": "(C)"}',
])
def test_multiple_choice_accepts_the_usual_ways_of_naming_the_letter(answer):
    assert score("C", done(answer)) == 1.0
    assert score("(C)", done(answer)) == 1.0
    assert score("B", done(answer)) == 0.0


def test_chat_message_completions_are_judged_like_strings():
    completion = [{"role": "assistant", "content": done("$\\boxed{42}$")}]
    assert score("42", completion) == 1.0


@pytest.mark.parametrize("record,problem", [
    ({"completion": done("\\boxed{1}")}, "gold"),
    ({"answer": "", "completion": done("\\boxed{1}")}, "gold"),
    ({"answer": "1"}, "completion"),
    ({"answer": "1", "completion": 42}, "completion"),
])
def test_a_record_that_cannot_be_judged_gets_none_and_an_error_not_zero(record, problem):
    v = verify(record)
    assert v.score is None and problem in v.error


@pytest.mark.parametrize("gold", ["The answer is $\\boxed{}$.", "\\boxed{ }"])
def test_a_gold_without_an_answer_gets_none_and_an_error(gold):
    v = verify({"answer": gold, "completion": done("$\\boxed{\\frac{1}{2}}$")})
    assert v.score is None and "gold" in v.error


def test_detail_names_the_verifier_and_the_extracted_answer():
    (v,) = verify_batch([{"answer": "\\frac12", "completion": done("$\\boxed{0.5}$")}])
    assert v.detail == {"verifier": "math", "extracted": "0.5"}

"""Inequalities in one variable against interval golds, and the reverse, through the real worker
pool: equal sets score 1, and an open end never passes for a closed one."""
from __future__ import annotations

import pytest

from qwqrl.verifiers.math import verify

# (gold, boxed answer): the two describe the same set of reals.
SAME_SET = [
    ("(-\\infty, 3)", "-\\infty < x < 3"),
    ("(-\\infty, 3)", "x < 3"),
    ("(-\\infty, 3)", "3 > x"),
    ("(-\\infty, 2]", "x \\le 2"),
    ("[2, \\infty)", "x \\geq 2"),
    ("(2, 5]", "2 < x \\le 5"),
    ("[\\sqrt{2}, \\infty)", "t \\ge \\sqrt{2}"),          # any one variable
    ("(2, 5]", "x \\in (2, 5]"),
    ("-\\infty < x < 3", "(-\\infty, 3)"),                 # inequality gold, interval answer
    ("x \\le 2", "(-\\infty, 2]"),
    ("2 < x \\le 5", "(2, 5]"),
    ("x > -1", "(-1, \\infty)"),
]
# (gold, boxed answer): close, but not the same set.
OTHER_SET = [
    ("(-\\infty, 2]", "x < 2"),                            # closed gold end, open answer end
    ("(-\\infty, 2)", "x \\le 2"),                         # open gold end, closed answer end
    ("(2, 5]", "2 \\le x \\le 5"),
    ("[2, \\infty)", "x > 2"),
    ("(-\\infty, 3)", "x < 4"),
    ("(-\\infty, 3) \\cup (5, \\infty)", "x < 3"),
    ("x < 2", "(-\\infty, 2]"),                            # inequality gold, interval answer
    ("x \\le 2", "(-\\infty, 2)"),
    ("2 < x \\le 5", "[2, 5]"),
    ("x \\ge 1", "(1, \\infty)"),
]


def _score(gold: str, answer: str) -> float | None:
    completion = "Let me work this out carefully.\n</think>\n\n$\\boxed{" + answer + "}$"
    return verify({"answer": gold, "completion": completion}).score


@pytest.mark.parametrize("gold, answer", SAME_SET)
def test_inequality_and_interval_of_the_same_set_match(gold: str, answer: str) -> None:
    assert _score(gold, answer) == 1.0


@pytest.mark.parametrize("gold, answer", OTHER_SET)
def test_different_sets_do_not_match(gold: str, answer: str) -> None:
    assert _score(gold, answer) == 0.0


def test_an_inequality_in_two_variables_is_not_an_interval() -> None:
    assert _score("(-\\infty, 3)", "x < y") == 0.0

"""pass@k, avg@k and standard errors against values worked out by hand."""
from __future__ import annotations

import math

import pytest

from qwqrl.eval_metrics import (default_ks, ifeval_accuracies, mean_stderr, pass_at_k,
                                sample_metrics)


@pytest.mark.parametrize(("n", "c", "k", "expected"), [
    (5, 0, 1, 0.0),          # c = 0: never
    (5, 0, 5, 0.0),          # c = 0, k = n
    (5, 1, 5, 1.0),          # k = n and one correct: the draw takes every sample
    (5, 5, 5, 1.0),
    (10, 3, 1, 0.3),         # pass@1 = c / n
    (4, 2, 2, 5 / 6),        # 1 - C(2,2)/C(4,2) = 1 - 1/6
    (10, 3, 5, 11 / 12),     # 1 - C(7,5)/C(10,5) = 1 - 21/252
    (10, 6, 5, 1.0),         # n - c < k: every draw of 5 holds a correct one
])
def test_pass_at_k_hand_values(n: int, c: int, k: int, expected: float) -> None:
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


def test_pass_at_k_equals_binomial_form_at_n_64() -> None:
    for c in (0, 1, 7, 32, 63, 64):
        for k in (1, 8, 64):
            exact = 1 - math.comb(64 - c, k) / math.comb(64, k)
            assert pass_at_k(64, c, k) == pytest.approx(exact, abs=1e-12)


def test_pass_at_k_stays_finite_where_binomials_overflow_floats() -> None:
    # C(2000, 1000) ~ 1e600 is not a float; the product form needs none of it
    assert 0.0 < pass_at_k(2000, 3, 1000) < 1.0


@pytest.mark.parametrize(("n", "c", "k"), [(4, 5, 1), (4, 1, 5), (4, 1, 0), (4, -1, 1)])
def test_pass_at_k_rejects_impossible_counts(n: int, c: int, k: int) -> None:
    with pytest.raises(ValueError, match="pass@k needs"):
        pass_at_k(n, c, k)


def test_mean_stderr_is_sample_std_over_sqrt_n() -> None:
    mean, se = mean_stderr([1, 0, 1, 0])
    assert mean == 0.5
    assert se == pytest.approx(math.sqrt(1 / 3) / 2)  # var (ddof 1) = 1/3, n = 4
    assert mean_stderr([0.7]) == (0.7, 0.0)


def test_sample_metrics_two_problems_of_four_samples() -> None:
    out = sample_metrics([[True, True, False, False], [False] * 4])
    assert out["avg@4"] == pytest.approx((0.25, 0.25))     # values 0.5 and 0: std 0.3536 / sqrt 2
    assert out["pass@1"][0] == pytest.approx(0.25)
    assert out["pass@2"][0] == pytest.approx((5 / 6 + 0) / 2)
    assert out["pass@4"] == pytest.approx((0.5, 0.5))
    assert sorted(out) == ["avg@4", "pass@1", "pass@2", "pass@4"]


def test_default_ks_are_powers_of_two_and_n() -> None:
    assert default_ks(64) == [1, 2, 4, 8, 16, 32, 64]
    assert default_ks(6) == [1, 2, 4, 6]
    assert default_ks(1) == [1]


def test_ifeval_accuracies_count_prompts_and_instructions() -> None:
    ids = [["a:x"], ["a:x", "b:y"], ["b:y", "b:z", "a:x"]]
    strict = [[True], [True, False], [True, True, True]]
    loose = [[True], [True, True], [True, True, True]]
    assert ifeval_accuracies(ids, strict, loose) == {
        "prompt_strict": 2 / 3, "inst_strict": 5 / 6, "prompt_loose": 1.0, "inst_loose": 1.0}

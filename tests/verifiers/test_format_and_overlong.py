"""The shaping terms: think format (one closed reasoning block, then an answer) and DAPO's soft
overlong penalty."""
from __future__ import annotations

import pytest

from qwqrl.verifiers import format as think_format
from qwqrl.verifiers import overlong
from qwqrl.verifiers.overlong import soft_overlong_penalty


@pytest.mark.parametrize("completion,reason", [
    ("reasoning</think>\nThe answer is 4.", None),
    ("<think>\nreasoning</think>\nThe answer is 4.", None),      # the model re-opened at start
    ("reasoning without end. The answer is 4.", "unclosed"),
    ("a</think>b</think>The answer is 4.", "several_blocks"),
    ("a</think>The answer <think>is 4.", "stray_open"),
    ("<think>a<think>b</think>4", "stray_open"),
    ("reasoning</think>\n  \n", "empty_answer"),
    ("</think>4", None),                                          # reasoning may be empty
])
def test_think_format_rewards_one_closed_block_followed_by_an_answer(completion, reason):
    v = think_format.verify({"completion": completion})
    assert v.score == float(reason is None)
    assert v.detail.get("reason") == reason


def test_without_a_template_opened_think_the_completion_must_open_it():
    assert think_format.verify({"completion": "r</think>4"}, think_opened=False).detail["reason"] \
        == "missing_open"
    assert think_format.verify({"completion": "<think>r</think>4"}, think_opened=False).score == 1.0


def test_min_answer_chars_option_requires_a_longer_answer():
    record = {"completion": "r</think> 4 "}
    assert think_format.verify(record).score == 1.0
    assert think_format.verify(record, min_answer_chars=2).score == 0.0


@pytest.mark.parametrize("length,expected", [
    (0, 0.0), (80, 0.0), (81, -1 / 20), (90, -0.5), (99, -19 / 20), (100, -1.0), (101, -1.0),
    (10_000, -1.0),
])
def test_soft_overlong_penalty_is_zero_then_linear_to_minus_one_in_the_buffer(length, expected):
    assert soft_overlong_penalty(length, max_len=100, buffer=20) == pytest.approx(expected)


def test_overlong_rejects_a_buffer_longer_than_the_limit():
    with pytest.raises(ValueError):
        soft_overlong_penalty(5, max_len=10, buffer=20)


def test_overlong_length_comes_from_ids_then_the_length_field_then_a_char_proxy():
    opts = {"max_len": 100, "buffer": 20}
    by_ids = overlong.verify({"completion": "x", "completion_ids": list(range(90)),
                              "completion_length": 10}, **opts)
    assert (by_ids.score, by_ids.detail["length_from"]) == (-0.5, "ids")
    by_field = overlong.verify({"completion": "x", "completion_length": 90}, **opts)
    assert (by_field.score, by_field.detail["length_from"]) == (-0.5, "field")
    by_chars = overlong.verify({"completion": "x" * 357}, **opts)  # ceil(357 / 4) = 90 tokens
    assert (by_chars.score, by_chars.detail["length"]) == (-0.5, 90)
    byte_level = overlong.verify({"completion": "x" * 90}, chars_per_token=1, **opts)
    assert byte_level.score == -0.5


def test_overlong_without_any_length_is_none_with_an_error():
    v = overlong.verify({"prompt": "p"})
    assert v.score is None and v.error

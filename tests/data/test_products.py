"""The tool demo's data (`synthetic: products`): a tool trace is exactly what the rollout loop
would produce (the call parses, its program prints the product, the tool turn is the template's,
the answer after the last `</think>` is judged right); no-tool traces answer straight away; the
problems do not depend on the share of tool traces; train and test never share a problem."""
from __future__ import annotations

import re

import pytest

from qwqrl.chat_template import QWQ_UNLISTED_TOOLS_TEMPLATE, tool_response_text
from qwqrl.data.synthetic import products
from qwqrl.errors import UserError
from qwqrl.tiny import build_tokenizer
from qwqrl.verifiers.math import verify_batch
from qwqrl.verifiers.tool_call import parse_calls


def test_a_tool_trace_calls_python_reads_its_output_and_boxes_it() -> None:
    tok = build_tokenizer()
    tok.chat_template = QWQ_UNLISTED_TOOLS_TEMPLATE  # the tool demo's template
    for record in products(20, seed=3, tool_share=1.0):
        first, rest = record["completion"].split("</tool_call>", 1)
        (call,) = parse_calls(first.split("</think>")[-1] + "</tool_call>")
        assert call["name"] == "python"
        a, b = re.fullmatch(r"print\((\d+)\*(\d+)\)", call["arguments"]["code"]).groups()
        assert record["prompt"] == f"What is {a}*{b}?" and str(int(a) * int(b)) == record["answer"]
        assert rest.startswith(tool_response_text(tok, [record["answer"]]))
    scores = [v.score for v in verify_batch(products(20, seed=3, tool_share=1.0), think_opened=True)]
    assert scores == [1.0] * 20


def test_without_the_tool_the_trace_answers_at_once() -> None:
    for record in products(10, seed=3, tool_share=0.0):
        assert "<tool_call>" not in record["completion"]
        assert record["completion"].endswith(f"\\boxed{{{record['answer']}}}")


def test_the_share_of_tool_traces_changes_traces_not_problems() -> None:
    mixed = products(400, seed=5, tool_share=0.3)
    assert [r["prompt"] for r in mixed] == [r["prompt"] for r in products(400, seed=5)]
    share = sum("<tool_call>" in r["completion"] for r in mixed) / len(mixed)
    assert 0.22 < share < 0.38
    with pytest.raises(UserError, match="tool_share"):
        products(2, seed=0, tool_share=1.5)


def test_held_out_products_are_never_trained_on() -> None:
    train = {r["prompt"] for r in products(2000, seed=1)}
    test = {r["prompt"] for r in products(100, seed=9, split="test")}
    assert not train & test

"""Held-out evaluation with tools (`eval.tools`): the model answers through the multi-turn tool
loop, and the sets report `tool_use/<task>`, the share of samples that called a tool; without
tools the key is absent (no tool was offered, so no share is claimed)."""
from __future__ import annotations

from functools import partial

from qwqrl.config import EvalConfig
from qwqrl.evaluation import evaluate
from qwqrl.tiny import build_tokenizer
from qwqrl.tools import ToolRolloutGenerator, Toolset
from tests.tools.scripted import mul_tool, prompt_text, scripted_model


def test_held_out_sets_answered_with_tools_report_tool_use() -> None:
    tok = build_tokenizer()
    model = scripted_model(tok)  # calls mul(6, 7), reads 42, answers
    records = [{"id": "q", "task": "math", "prompt": "6*7?", "answer": "42"}]
    render = lambda record: prompt_text(tok)  # noqa: E731  the script's prompt
    loop = partial(ToolRolloutGenerator, tokenizer=tok, toolset=Toolset([mul_tool()]), max_turns=2)
    with_tools = evaluate(model, tok, records, EvalConfig(samples=2), 96, render,
                          tool_loop=loop)
    assert with_tools["tool_use/math"] == 1.0
    without = evaluate(model, tok, records, EvalConfig(), 96, render)
    assert "tool_use/math" not in without and "pass_rate/math" in without

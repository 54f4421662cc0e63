"""Multi-turn tool rollouts on the HF generator, with a real (memorised) model and a real tool:
the tool runs, its response is in the completion as masked context, the model's tokens after it
have the learner's (teacher-forced) log-probs, and the update's loss mask leaves it out."""
from __future__ import annotations

import pytest
import torch

from qwqrl.generation import SamplingParams
from qwqrl.generation.hf import HFGenerator
from qwqrl.rollouts import Batch, rollout_metrics
from qwqrl.tiny import build_tokenizer
from qwqrl.tools import Tool, ToolRolloutGenerator, Toolset, function_tool
from tests.tools.scripted import (check_two_turns, check_update_masks, mul_tool, prompt_text,
                                  script_ids, scripted_model)

SAMPLING = SamplingParams(max_new_tokens=200, temperature=1.0, top_p=1.0, top_k=0, seed=0)


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer()


@pytest.fixture(scope="module")
def model(tok):
    return scripted_model(tok)


def rollouts(model, tok, tools: list[Tool], n: int = 2, max_turns: int = 4,
             sampling: SamplingParams = SAMPLING):
    loop = ToolRolloutGenerator(HFGenerator(model, tok, batch_size=4), tok,
                                Toolset(tools, timeout_s=5), max_turns)
    return loop.generate([prompt_text(tok)], n, sampling)


def test_two_turns_run_the_tool_mask_its_response_and_match_teacher_forcing(model, tok) -> None:
    seen = []

    def mul(a: int, b: int) -> int:
        """Multiply."""
        seen.append((a, b))
        return a * b

    out = rollouts(model, tok, [function_tool(mul)])
    assert seen == [(6, 7), (6, 7)]  # the tool ran once per sample, with the model's arguments
    check_two_turns(model, tok, out, SAMPLING.temperature)


def test_the_update_masks_tool_responses_and_trains(model, tok) -> None:
    out = rollouts(model, tok, [mul_tool()])
    metrics = check_update_masks(model, tok, out)
    assert torch.isfinite(torch.tensor(metrics["loss"]))
    batch = Batch(out, [{"task": "math"}] * 2, torch.tensor([1.0, 0.0]), {"math": [1.0, 0.0]})
    stats = rollout_metrics(batch, informative=[0], group_size=2)
    assert stats["tools/calls_per_sample"] == 1.0 and stats["tools/used_frac"] == 1.0
    assert stats["pass_rate/math/with_tool"] == 0.5 and "pass_rate/math/without_tool" not in stats


def test_the_last_allowed_turn_is_not_answered(model, tok) -> None:
    out = rollouts(model, tok, [mul_tool()], max_turns=1)
    _, call, _, _ = script_ids(tok)
    for r in out:
        assert r.completion_ids == call and r.action_mask == [1] * len(call)
        assert r.tool_stats.turns == 1 and r.tool_stats.calls == 0 and r.tool_stats.hit_max_turns


def test_a_tool_response_that_does_not_fit_the_budget_ends_the_sample(model, tok) -> None:
    _, call, tool, _ = script_ids(tok)
    budget = len(call) + len(tool)  # the response would leave no room for a model token
    out = rollouts(model, tok, [mul_tool()], sampling=SamplingParams(
        max_new_tokens=budget, temperature=1.0, top_p=1.0, top_k=0, seed=0))
    for r in out:
        assert r.completion_ids == call and r.finish_reason == "length"
        assert r.tool_stats.calls == 1  # it ran; its answer did not fit


def test_a_failing_tool_answers_with_its_error_and_the_rollout_goes_on(model, tok) -> None:
    def mul(a: int, b: int) -> int:
        """Multiply."""
        raise ZeroDivisionError("no multiplying today")

    out = rollouts(model, tok, [function_tool(mul)], n=1)
    r = out[0]
    assert "error: ZeroDivisionError: no multiplying today" in r.text
    assert r.tool_stats.errors == 1 and r.tool_stats.turns >= 2
    assert 0 in r.action_mask

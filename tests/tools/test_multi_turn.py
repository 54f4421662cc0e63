"""Multi-turn tool rollouts on the HF generator, with a real (memorised) model and a real tool:
the tool runs, its response is in the completion as masked context, the model's tokens after it
have the learner's (teacher-forced) log-probs, and the update's loss mask leaves it out."""
from __future__ import annotations

import pytest
import torch

from qwqrl.config import RLStage
from qwqrl.distributed import init_distributed
from qwqrl.generation import SamplingParams
from qwqrl.generation.hf import HFGenerator
from qwqrl.learner import Learner
from qwqrl.policy_update import UpdateSettings, micro_batches, policy_update
from qwqrl.rollouts import Batch, rollout_metrics
from qwqrl.sequences import completion_logprobs, pack
from qwqrl.tiny import build_tokenizer
from qwqrl.tools import Tool, ToolRolloutGenerator, Toolset
from tests.tools.scripted import mul_tool, prompt_text, script_ids, scripted_model

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

    from qwqrl.tools import function_tool
    out = rollouts(model, tok, [function_tool(mul)])
    _, call, tool, answer = script_ids(tok)
    assert seen == [(6, 7), (6, 7)]  # the tool ran once per sample, with the model's arguments
    for r in out:
        assert r.completion_ids == call + tool + answer and r.finish_reason == "stop"
        assert r.action_mask == [1] * len(call) + [0] * len(tool) + [1] * len(answer)
        assert r.logprobs[len(call):len(call) + len(tool)] == [0.0] * len(tool)
        assert (r.tool_stats.calls, r.tool_stats.errors, r.tool_stats.turns) == (1, 0, 2)
        assert "<tool_response>\n42\n</tool_response>" in r.text
    # the learner's log-probs of the model's tokens, teacher-forced over the whole sequence
    packed = pack([r.prompt_ids for r in out], [r.completion_ids for r in out], tok.pad_token_id,
                  torch.device("cpu"))
    with torch.no_grad():
        learner_lp, _ = completion_logprobs(model, packed, temperature=1.0)
    for row, r in enumerate(out):
        model_tokens = torch.tensor(r.action_mask, dtype=torch.bool)
        sampled = torch.tensor(r.logprobs)[model_tokens]
        torch.testing.assert_close(learner_lp[row, :len(r.completion_ids)][model_tokens], sampled,
                                   atol=1e-4, rtol=1e-4)
        after_tool = slice(len(call) + len(tool), len(r.completion_ids))
        assert after_tool.stop > after_tool.start


def test_the_update_masks_tool_responses_and_trains(model, tok) -> None:
    out = rollouts(model, tok, [mul_tool()])
    stage = RLStage.model_validate({
        "name": "rl", "kind": "rl", "data": {"train": [{"synthetic": "arithmetic"}]},
        "rewards": {"math": {}}, "algorithm": {"num_generations": 2},
        "tools": {"functions": ["tests.tools.scripted:mul"]},
        "trainer": {"lr": 1e-4, "micro_batch_size": 2, "max_steps": 1}})
    dist = init_distributed()
    policy = Learner(model, stage.trainer, total_steps=1)
    batch = Batch(out, [{"task": "math", "prompt": "6*7?"}] * 2, torch.tensor([1.0, 0.0]),
                  {"math": [1.0, 0.0]})
    settings = UpdateSettings.for_stage(stage, tok.pad_token_id, dist.device)
    mbs = micro_batches(policy, batch, torch.tensor([True, True]), settings)
    for mb, mask in zip(mbs.index, mbs.masks):
        for row, i in enumerate(mb):
            expected = torch.tensor(out[i].action_mask, dtype=torch.float)
            assert torch.equal(mask[row, :len(expected)], expected)
    metrics = policy_update(policy, batch, settings)
    assert torch.isfinite(torch.tensor(metrics["loss"]))
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

    from qwqrl.tools import function_tool
    out = rollouts(model, tok, [function_tool(mul)], n=1)
    r = out[0]
    assert "error: ZeroDivisionError: no multiplying today" in r.text
    assert r.tool_stats.errors == 1 and r.tool_stats.turns >= 2
    assert 0 in r.action_mask

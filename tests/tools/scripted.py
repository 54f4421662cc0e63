"""A tiny model that has memorised one tool-using trajectory, so rollout tests see a real model
call a real tool: it asks `mul(6, 7)`, reads the tool turn, then answers.

The model is the real tiny Qwen2 trained for a few seconds on the whole trajectory (prompt, the
call, the tool turn exactly as `tool_response_text` renders it, the answer); sampling at
temperature 1 then follows the script with probability close to 1 per token.
"""
from __future__ import annotations

import torch

from qwqrl.chat_template import tool_response_text
from qwqrl.generation import Rollout
from qwqrl.sequences import completion_logprobs, pack
from qwqrl.tiny import build_model
from qwqrl.tools import function_tool

PROMPT = [{"role": "user", "content": "6*7?"}]
CALL = '</think>\n<tool_call>\n{"name": "mul", "arguments": {"a": 6, "b": 7}}\n</tool_call>'
ANSWER = "ok</think>\n42<|im_end|>"
SMALL = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
         "num_key_value_heads": 2, "intermediate_size": 128}


def mul(a: int, b: int) -> int:
    """Multiply two integers.

    Args:
        a: the first factor.
        b: the second factor.
    """
    return a * b


def mul_tool():
    return function_tool(mul)


def prompt_text(tok) -> str:
    return tok.apply_chat_template(PROMPT, tokenize=False, add_generation_prompt=True)


def script_ids(tok) -> tuple[list[int], list[int], list[int], list[int]]:
    """(prompt, call turn, tool turn, answer turn) token ids."""
    enc = lambda text: tok(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    return enc(prompt_text(tok)), enc(CALL), enc(tool_response_text(tok, ["42"])), enc(ANSWER)


def scripted_model(tok, steps: int = 600, seed: int = 0, shape: dict | None = None) -> torch.nn.Module:
    """The tiny model after memorising the script (stops early once every token is ~certain)."""
    torch.manual_seed(seed)
    model = build_model(tok, seed=seed, **(shape or SMALL))
    prompt, call, tool, answer = script_ids(tok)
    ids = torch.tensor([prompt + call + tool + answer])
    labels = ids.clone()
    labels[0, :len(prompt)] = -100
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(steps):
        logits = model(input_ids=ids).logits[0, :-1]
        nll = torch.nn.functional.cross_entropy(logits, ids[0, 1:], reduction="none")[len(prompt) - 1:]
        opt.zero_grad()
        nll.mean().backward()
        opt.step()
        if nll.max().item() < 1e-3:  # every token of the script ~certain
            break
    model.eval()
    return model


def check_two_turns(model: torch.nn.Module, tok, rollouts: list[Rollout], temperature: float) -> None:
    """What a 2-turn rollout must be, whichever generator made it: the script, with the tool
    turn as masked context (0.0 placeholder log-probs), and every model token's log-prob, those
    after the tool response included, equal to the learner's teacher-forced one."""
    _, call, tool, answer = script_ids(tok)
    for r in rollouts:
        assert r.completion_ids == call + tool + answer and r.finish_reason == "stop"
        assert r.action_mask == [1] * len(call) + [0] * len(tool) + [1] * len(answer)
        assert r.logprobs[len(call):len(call) + len(tool)] == [0.0] * len(tool)
        assert (r.tool_stats.calls, r.tool_stats.errors, r.tool_stats.turns) == (1, 0, 2)
        assert "<tool_response>\n42\n</tool_response>" in r.text
    packed = pack([r.prompt_ids for r in rollouts], [r.completion_ids for r in rollouts],
                  tok.pad_token_id, next(model.parameters()).device)
    with torch.no_grad():
        learner_lp, _ = completion_logprobs(model, packed, temperature=temperature)
    for row, r in enumerate(rollouts):
        mine = torch.tensor(r.action_mask, dtype=torch.bool)
        torch.testing.assert_close(learner_lp[row, :len(r.completion_ids)].cpu()[mine],
                                   torch.tensor(r.logprobs)[mine], atol=1e-4, rtol=1e-4)


def check_update_masks(model: torch.nn.Module, tok, rollouts: list[Rollout]) -> dict[str, float]:
    """The loss masks the policy update builds for `rollouts` (two samples of one prompt) are
    their action masks; then one real update runs on them. Returns its metrics."""
    from qwqrl.config import RLStage
    from qwqrl.distributed import init_distributed
    from qwqrl.learner import Learner
    from qwqrl.policy_update import UpdateSettings, micro_batches, policy_update
    from qwqrl.rollouts import Batch

    stage = RLStage.model_validate({
        "name": "rl", "kind": "rl", "data": {"train": [{"synthetic": "arithmetic"}]},
        "rewards": {"math": {}}, "algorithm": {"num_generations": 2},
        "tools": {"functions": ["tests.tools.scripted:mul"]},
        "trainer": {"lr": 1e-4, "micro_batch_size": 2, "max_steps": 1}})
    dist = init_distributed()
    policy = Learner(model, stage.trainer, total_steps=1)
    batch = Batch(rollouts, [{"task": "math", "prompt": "6*7?"}] * 2, torch.tensor([1.0, 0.0]),
                  {"math": [1.0, 0.0]})
    settings = UpdateSettings.for_stage(stage, tok.pad_token_id, dist.device)
    mbs = micro_batches(policy, batch, torch.tensor([True, True]), settings)
    for mb, mask in zip(mbs.index, mbs.masks):
        for row, i in enumerate(mb):
            expected = torch.tensor(rollouts[i].action_mask, dtype=torch.float)
            assert torch.equal(mask[row, :len(expected)].cpu(), expected)
            assert mask[row, len(expected):].sum() == 0
    return policy_update(policy, batch, settings)

"""A tiny model that has memorised one tool-using trajectory, so rollout tests see a real model
call a real tool: it asks `mul(6, 7)`, reads the tool turn, then answers.

The model is the real tiny Qwen2 trained for a few seconds on the whole trajectory (prompt, the
call, the tool turn exactly as `tool_response_text` renders it, the answer); sampling at
temperature 1 then follows the script with probability close to 1 per token.
"""
from __future__ import annotations

import torch

from qwqrl.chat_template import tool_response_text
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


def scripted_model(tok, steps: int = 600, seed: int = 0) -> torch.nn.Module:
    """The tiny model after memorising the script (stops early once every token is ~certain)."""
    torch.manual_seed(seed)
    model = build_model(tok, seed=seed, **SMALL)
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

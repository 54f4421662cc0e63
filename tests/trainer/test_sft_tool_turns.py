"""Cold-start traces that call tools: the tool turns they quote are context, not targets. The
loss mask is 0 on exactly the tokens of the tool turns (what the rollout loop appends and masks
out of the RL loss), 1 on everything the model writes, EOS included."""
from __future__ import annotations

from qwqrl.chat_template import split_tool_turns, tool_response_text
from qwqrl.sft import tokenize
from qwqrl.tiny import build_tokenizer

TOK = build_tokenizer()
ASK = 'Use python.\n</think>\n\n<tool_call>\n{"name": "python", "arguments": {"code": "print(6*7)"}}\n</tool_call>'
ANSWER = "It printed the answer.\n</think>\n\n\\boxed{42}"


def ids(text: str) -> list[int]:
    return TOK(text, add_special_tokens=False)["input_ids"]


def test_the_loss_mask_is_zero_on_exactly_the_tool_turns() -> None:
    turn, turn2 = tool_response_text(TOK, ["42"]), tool_response_text(TOK, ["a", "b"])
    completion = ASK + turn + ASK + turn2 + ANSWER
    row, = tokenize([{"prompt": "q", "completion": completion}], TOK, lambda r: r["prompt"], 1000)
    assert row.completion == ids(completion + TOK.eos_token)
    expect = ([1] * len(ids(ASK)) + [0] * len(ids(turn)) + [1] * len(ids(ASK))
              + [0] * len(ids(turn2)) + [1] * (len(ids(ANSWER)) + 1))
    assert row.loss_mask == expect
    masked = [t for t, m in zip(row.completion, row.loss_mask) if not m]
    assert TOK.decode(masked) == turn + turn2


def test_records_without_tool_turns_train_on_every_token_and_cuts_keep_the_mask_aligned() -> None:
    plain, tool = (tokenize([{"prompt": "q", "completion": c}], TOK, lambda r: r["prompt"], 40)[0]
                   for c in ("no tools here", ASK + tool_response_text(TOK, ["42"]) + ANSWER))
    assert plain.loss_mask == [1] * len(plain.completion) == [1] * (len(ids("no tools here")) + 1)
    assert len(tool.prompt) + len(tool.completion) == 40 == len(tool.prompt) + len(tool.loss_mask)


def test_a_turn_that_never_closes_is_the_models_text() -> None:
    head = tool_response_text(TOK, ["x"]).split("x")[0]
    assert split_tool_turns(TOK, ASK + head + "42") == [(ASK + head + "42", True)]

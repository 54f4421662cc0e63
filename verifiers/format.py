"""Think-format shaping term: 1.0 for one closed reasoning block followed by a non-empty answer.

Rewarding the shape separately from correctness (weighted in the recipe) teaches a fresh model to
close its reasoning and answer, which the accuracy verifiers require before they give anything.

Rules, on the completion as generated after the chat template:
- exactly one `</think>`;
- `<think>` at most once, and only at the very start; with `think_opened=False` (a template that
  does not open reasoning for the model) it is required there;
- after `</think>`, an answer of at least `min_answer_chars` non-space characters.

`detail.reason` names the first rule broken: unclosed, several_blocks, stray_open, missing_open,
empty_answer.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from qwqrl.verifiers.base import THINK_CLOSE, THINK_OPEN, Verdict, completion_text
from qwqrl.verifiers.reward_fn import reward_function


def think_format_violation(text: str, think_opened: bool = True, min_answer_chars: int = 1) -> str | None:
    """The first format rule `text` breaks, or None when it is well formed."""
    closes = text.count(THINK_CLOSE)
    if closes == 0:
        return "unclosed"
    if closes > 1:
        return "several_blocks"
    opens = text.count(THINK_OPEN)
    opens_at_start = text.lstrip().startswith(THINK_OPEN)
    if opens > 1 or (opens == 1 and not opens_at_start):
        return "stray_open"
    if not think_opened and opens == 0:
        return "missing_open"
    answer = text.split(THINK_CLOSE, 1)[1]
    if len("".join(answer.split())) < min_answer_chars:
        return "empty_answer"
    return None


def verify(record: Mapping[str, Any], *, think_opened: bool = True, min_answer_chars: int = 1) -> Verdict:
    if record.get("completion") is None:
        return Verdict(None, {"verifier": "format"}, "record has no 'completion'")
    try:
        text = completion_text(record["completion"])
    except TypeError as e:
        return Verdict(None, {"verifier": "format"}, str(e))
    reason = think_format_violation(text, think_opened, min_answer_chars)
    detail = {"verifier": "format"} if reason is None else {"verifier": "format", "reason": reason}
    return Verdict(float(reason is None), detail)


def verify_batch(records: Sequence[Mapping[str, Any]], *, think_opened: bool = True,
                 min_answer_chars: int = 1) -> list[Verdict]:
    return [verify(r, think_opened=think_opened, min_answer_chars=min_answer_chars)
            for r in records]


format_reward = reward_function(verify_batch, "format_reward")

"""What every verifier shares: the verdict type and how a completion's answer is found.

A verifier judges one record (a dataset row plus its `completion`) and returns a Verdict. A score
of None means "not applicable or could not judge": the trainer masks such samples instead of
teaching the model that they were wrong.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"


@dataclass
class Verdict:
    score: float | None
    detail: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


def completion_text(completion: Any) -> str:
    """TRL passes completions as strings or as chat messages; both become the assistant's text."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list):
        return "".join(m.get("content", "") for m in completion if isinstance(m, dict))
    if isinstance(completion, dict):
        return str(completion.get("content", ""))
    raise TypeError(f"completion must be a string or chat messages, got {type(completion).__name__}")


def final_answer(completion: str, think_opened: bool = True) -> str | None:
    """The text after the last `</think>`; None when the reasoning was never closed.

    `think_opened`: the chat template opened `<think>` before the completion started (the QwQ
    template does), so a completion without `</think>` is unfinished. With a template that does
    not force reasoning, a completion with no think tags at all is judged whole.
    """
    idx = completion.rfind(THINK_CLOSE)
    if idx >= 0:
        return completion[idx + len(THINK_CLOSE):]
    if not think_opened and THINK_OPEN not in completion:
        return completion
    return None

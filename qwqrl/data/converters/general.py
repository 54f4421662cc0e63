"""Chat and SFT sets: prompts for the reward model, conversations for the cold start.

- open-r1/Mixture-of-Thoughts (configs all, math, code, science): `messages`, a conversation
  whose last turn is the assistant's R1 trace (`<think>...</think>` then the answer). The record's
  prompt is every turn before it and its completion that turn, without the `<think>\\n` opener
  that the qwq chat template has already written at the start of the assistant turn.
- HuggingFaceH4/ultrafeedback_binarized (splits *_prefs, *_sft, *_gen): `prompt` is the user's
  request; the chosen/rejected answers are for preference training and are not used.
"""
from __future__ import annotations

from qwqrl.chat_template import THINK_PREFIX
from qwqrl.data.converters import Row, register


@register("mixture_of_thoughts", fixture="mixture_of_thoughts.jsonl")
def mixture_of_thoughts(row: Row) -> Row:
    """open-r1/Mixture-of-Thoughts: `messages` -> prompt (turns before the last) + completion
    (the last, assistant, turn without its leading `<think>\\n`); task general, `source` kept."""
    messages = row["messages"]
    if not messages or messages[-1].get("role") != "assistant":
        raise ValueError('messages: the last turn must be the "assistant" response')
    completion = messages[-1]["content"]
    record: Row = {
        "task": "general",
        "prompt": [{"role": m["role"], "content": m["content"]} for m in messages[:-1]],
        "completion": completion.removeprefix(THINK_PREFIX),
    }
    if row.get("source"):
        record["source"] = row["source"]
    return record


@register("ultrafeedback", fixture="ultrafeedback.jsonl")
def ultrafeedback(row: Row) -> Row:
    """HuggingFaceH4/ultrafeedback_binarized: `prompt` -> prompt, `prompt_id` -> id; task
    general (the reward model scores the answer)."""
    return {"id": row["prompt_id"], "task": "general", "prompt": row["prompt"]}

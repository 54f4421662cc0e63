"""Turn a record into chat messages and a rendered prompt, with the task's answer instruction.

The verifiers look for the answer in a fixed place (`\\boxed{}` for math, a fenced code block for
code, the `answer` field for multiple choice), so the prompt says where to put it, in the words
QwQ's usage guide recommends. An instruction the prompt already contains is not added again.
The tiny CPU demo turns instructions off: each suffix costs ~70 byte-level tokens of context.
"""
from __future__ import annotations

import copy
import re
from typing import Any

from qwqrl.verifiers.tool_call import tool_schemas

MATH_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."
MULTIPLE_CHOICE_INSTRUCTION = ('Please show your choice in the `answer` field with only the choice '
                               'letter, e.g., `"answer": "C"`.')
CODE_INSTRUCTION = "Write your solution as a single ```{language} code block."

CHOICE_LETTER = re.compile(r"[A-J]")
# An option: "A. ", "(B) ", "C) ", "D: " starting a line, or "(E)" anywhere (inline option lists).
OPTION_MARK = re.compile(r"^[ \t]*\(?([A-J])[).:][ \t]|\(([A-J])\)", re.MULTILINE)


def instruction_for(record: dict[str, Any]) -> str | None:
    """The answer-format instruction for the record's task; None when the task needs none."""
    task = record.get("task")
    if task == "math":
        return MULTIPLE_CHOICE_INSTRUCTION if is_multiple_choice(record) else MATH_INSTRUCTION
    if task == "code":
        language = "cpp" if record.get("language") == "cpp" else "python"
        return CODE_INSTRUCTION.format(language=language)
    return None


def is_multiple_choice(record: dict[str, Any]) -> bool:
    """Gold is a single letter A-J and the prompt lists at least two lettered options."""
    answer = str(record.get("answer", "")).strip()
    if not CHOICE_LETTER.fullmatch(answer):
        return False
    marks = OPTION_MARK.findall(_prompt_text(record["prompt"]))
    return len({line_start or inline for line_start, inline in marks}) >= 2


def to_messages(record: dict[str, Any], system_prompt: str | None = None,
                instructions: bool = True) -> list[dict[str, str]]:
    """Chat messages for `record`: a string prompt becomes one user turn, message lists are kept
    (copied); `system_prompt` is prepended unless the record has its own system turn; the task's
    instruction is appended to the last user turn unless already present."""
    prompt = record["prompt"]
    messages = ([{"role": "user", "content": prompt}] if isinstance(prompt, str)
                else copy.deepcopy(prompt))
    if system_prompt is not None and messages[0]["role"] != "system":
        messages.insert(0, {"role": "system", "content": system_prompt})
    instruction = instruction_for(record) if instructions else None
    if instruction is not None:
        last_user = max(i for i, m in enumerate(messages) if m["role"] == "user")
        content = messages[last_user]["content"]
        if instruction not in content:
            messages[last_user]["content"] = f"{content.rstrip()}\n{instruction}"
    return messages


def render_prompt(tokenizer: Any, record: dict[str, Any], system_prompt: str | None = None,
                  instructions: bool = True, tools: list[dict[str, Any]] | None = None) -> str:
    """The prompt text the model continues: chat template with the generation prompt (for QwQ
    it ends with `<|im_start|>assistant\\n<think>\\n`). A tool_call record's `tools` go to the
    template, which shows them to the model (Qwen's lists them in the system turn), after
    `tools`: the stage's own (`qwqrl.tools`), which the model may call during the rollout."""
    messages = to_messages(record, system_prompt, instructions)
    own = tool_schemas(record) if record.get("task") == "tool_call" else []
    tools = [*(tools or []), *own] or None
    return tokenizer.apply_chat_template(messages, tools=tools, tokenize=False,
                                         add_generation_prompt=True)


def _prompt_text(prompt: str | list[dict[str, str]]) -> str:
    if isinstance(prompt, str):
        return prompt
    return "\n".join(m["content"] for m in prompt if m["role"] == "user")


def drop_long_prompts(sources: list[tuple[list[dict[str, Any]], float]], tokenizer: Any,
                      render: Any, max_tokens: int, where: str
                      ) -> tuple[list[tuple[list[dict[str, Any]], float]], int]:
    """The mixture without records whose rendered prompt exceeds `max_tokens` tokens, and how
    many were dropped. A prompt that long would crowd out the completion (or overflow the
    engine's context); dropping it at stage start keeps every step's batch the size asked for.
    A source left empty leaves the mixture (its weight goes to the others); none left is an error.
    """
    from qwqrl.errors import UserError
    from qwqrl.generation.base import encode_prompts

    kept: list[tuple[list[dict[str, Any]], float]] = []
    dropped = 0
    for records, weight in sources:
        lengths = [len(ids) for ids in encode_prompts(tokenizer, [render(r) for r in records])]
        short = [r for r, n in zip(records, lengths) if n <= max_tokens]
        dropped += len(records) - len(short)
        if short:
            kept.append((short, weight))
    if not kept:
        raise UserError(f"{where}: every prompt is longer than generation.max_prompt_tokens="
                        f"{max_tokens} tokens ({dropped} dropped); raise the limit or use "
                        f"shorter data")
    return kept, dropped

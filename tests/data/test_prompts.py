import pytest

from qwqrl.data import render_prompt, to_messages
from qwqrl.data.prompts import (CODE_INSTRUCTION, MATH_INSTRUCTION, MULTIPLE_CHOICE_INSTRUCTION,
                                instruction_for)
from qwqrl.tiny import build_tokenizer
from tests.data.test_records import TOOL_CALL

MATH = {"task": "math", "prompt": "What is 1+1?", "answer": "2"}
CHOICE = {"task": "math", "answer": "B",
          "prompt": "Which is prime?\nA. 4\nB. 5\nC. 6\nD. 8"}


def test_string_prompt_becomes_a_user_turn_with_the_instruction():
    assert to_messages(MATH) == [{"role": "user", "content": f"What is 1+1?\n{MATH_INSTRUCTION}"}]


def test_instruction_is_not_added_twice():
    once = to_messages(MATH)[0]["content"]
    assert to_messages(dict(MATH, prompt=once))[0]["content"] == once
    assert once.count(MATH_INSTRUCTION) == 1


def test_instructions_can_be_switched_off():
    assert to_messages(MATH, instructions=False) == [{"role": "user", "content": "What is 1+1?"}]


@pytest.mark.parametrize("record, expected", [
    (CHOICE, MULTIPLE_CHOICE_INSTRUCTION),
    (dict(CHOICE, prompt="Which is prime?\n(A) 4\n(B) 5"), MULTIPLE_CHOICE_INSTRUCTION),
    (dict(CHOICE, prompt="Which is prime? (A) 4 (B) 5 (C) 6"), MULTIPLE_CHOICE_INSTRUCTION),
    (dict(CHOICE, prompt="Which is prime?\nA) 4\nB: 5"), MULTIPLE_CHOICE_INSTRUCTION),
    (dict(CHOICE, prompt="Is B. subtilis a bacterium? (A) yes"), MATH_INSTRUCTION),  # one option
    (dict(CHOICE, prompt="What is the letter after A?"), MATH_INSTRUCTION),  # no options listed
    (dict(CHOICE, answer="5"), MATH_INSTRUCTION),
    ({"task": "code", "prompt": "p"}, CODE_INSTRUCTION.format(language="python")),
    ({"task": "code", "prompt": "p", "language": "cpp"}, "Write your solution as a single ```cpp code block."),
    ({"task": "ifeval", "prompt": "p"}, None),
    ({"task": "general", "prompt": "p"}, None),
])
def test_instruction_per_task(record, expected):
    assert instruction_for(record) == expected


def test_messages_are_kept_and_not_mutated():
    prompt = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
              {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "1+1?"}]
    record = {"task": "math", "prompt": prompt, "answer": "2"}
    messages = to_messages(record, system_prompt="ignored: the record has its own")
    assert messages[:3] == prompt[:3]
    assert messages[3] == {"role": "user", "content": f"1+1?\n{MATH_INSTRUCTION}"}
    assert prompt[3]["content"] == "1+1?"


def test_system_prompt_is_prepended():
    messages = to_messages({"task": "general", "prompt": "Hi"}, system_prompt="Be kind.")
    assert messages == [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi"}]


def test_render_ends_inside_the_think_block():
    text = render_prompt(build_tokenizer(), MATH, instructions=False)
    assert text == "<|im_start|>user\nWhat is 1+1?<|im_end|>\n<|im_start|>assistant\n<think>\n"
    assert render_prompt(build_tokenizer(), MATH, system_prompt="S").startswith("<|im_start|>system\nS")


def test_a_tool_call_records_tools_reach_the_chat_template():
    tok = build_tokenizer()
    tok.chat_template = ("{%- if tools %}<tools>{{ tools | tojson }}</tools>{%- endif %}"
                         "{%- for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{%- endfor %}")
    text = render_prompt(tok, TOOL_CALL)
    assert text.startswith('<tools>[{"type": "function", "function": {"name": "get_weather"')
    assert "<tools>" not in render_prompt(tok, dict(MATH, tools=TOOL_CALL["tools"]))

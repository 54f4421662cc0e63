"""The QwQ template writes tools and tool turns as Qwen's template does, and the loop's tool turn
is exactly what the template renders between an assistant turn and the next."""
from __future__ import annotations

from qwqrl.chat_template import tool_response_text
from qwqrl.tiny import build_tokenizer
from qwqrl.tools import function_tool
from tests.tools.scripted import mul


def test_tools_are_listed_in_the_system_turn_as_qwen_does() -> None:
    tok = build_tokenizer()
    schema = function_tool(mul).schema
    text = tok.apply_chat_template([{"role": "system", "content": "Be brief."},
                                    {"role": "user", "content": "6*7?"}], tools=[schema],
                                   tokenize=False, add_generation_prompt=True)
    assert text.startswith("<|im_start|>system\nBe brief.\n\n# Tools\n\nYou may call one or more "
                           "functions to assist with the user query.\n\n")
    assert '<tools>\n{"type": "function", "function": {"name": "mul"' in text
    assert text.count("<|im_start|>system") == 1  # the system message is not repeated
    assert text.endswith("</tool_call><|im_end|>\n<|im_start|>user\n6*7?<|im_end|>\n"
                         "<|im_start|>assistant\n<think>\n")


def test_the_tool_turn_closes_the_assistant_turn_and_reopens_thinking() -> None:
    tok = build_tokenizer()
    assert tool_response_text(tok, ["42", "oops"]) == (
        "<|im_end|>\n<|im_start|>user\n<tool_response>\n42\n</tool_response>\n"
        "<tool_response>\noops\n</tool_response><|im_end|>\n<|im_start|>assistant\n<think>\n")
    history = tok.apply_chat_template(
        [{"role": "user", "content": "q"}, {"role": "assistant", "content": "A"},
         {"role": "tool", "content": "42"}], tokenize=False, add_generation_prompt=True)
    assert history.endswith("A" + tool_response_text(tok, ["42"]))

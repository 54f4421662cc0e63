"""The QwQ chat template: ChatML turns, and a generation prompt that opens `<think>\\n`.

QwQ's usage guide forces every completion to start inside the reasoning block, so the model
cannot skip thinking; the verifiers therefore treat a completion without `</think>` as unfinished.
Earlier assistant turns keep only their answer (the text after `</think>`), as QwQ's template does.

Tools follow Qwen's convention, as QwQ's own template writes it: the function schemas are listed
in the system turn, inside `<tools></tools>`, with the instruction to answer in `<tool_call>`
blocks; a `tool` message is a user turn wrapping the result in `<tool_response>` (consecutive ones
share one turn). `tool_response_text` renders that turn for the multi-turn rollout loop, through
the tokenizer's own template, so a checkpoint with Qwen's template gets exactly Qwen's text.
"""

_TOOLS_SYSTEM = (
    "{%- if tools %}"
    "{{- '<|im_start|>system\\n' }}"
    "{%- if messages[0]['role'] == 'system' %}{{- messages[0]['content'] + '\\n\\n' }}{%- endif %}"
    "{{- '# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\n'"
    " + 'You are provided with function signatures within <tools></tools> XML tags:\\n<tools>' }}"
    "{%- for tool in tools %}{{- '\\n' + (tool | tojson) }}{%- endfor %}"
    "{{- '\\n</tools>\\n\\nFor each function call, return a json object with function name and '"
    " + 'arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n'"
    " + '{\"name\": <function-name>, \"arguments\": <args-json-object>}\\n</tool_call><|im_end|>\\n' }}"
    "{%- endif %}"
)

QWQ_CHAT_TEMPLATE = _TOOLS_SYSTEM + (
    "{%- for message in messages %}"
    "{%- if not (tools and loop.first and message['role'] == 'system') %}"
    "{%- set content = message['content'] %}"
    "{%- if message['role'] == 'assistant' and '</think>' in content %}"
    "{%- set content = content.split('</think>')[-1].lstrip('\\n') %}"
    "{%- endif %}"
    "{%- if message['role'] == 'tool' %}"
    "{%- if loop.first or loop.previtem['role'] != 'tool' %}{{- '<|im_start|>user' }}{%- endif %}"
    "{{- '\\n<tool_response>\\n' + content + '\\n</tool_response>' }}"
    "{%- if loop.last or loop.nextitem['role'] != 'tool' %}{{- '<|im_end|>\\n' }}{%- endif %}"
    "{%- else %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + content + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n<think>\\n' }}{%- endif %}"
)

# QwQ's template without the tool list: a 1M-parameter byte-level model (the CPU tool demo) pays
# ~750 tokens per prompt for Qwen's tools preamble, 8x its steps' cost; it learns its one tool
# from the cold start instead. Tool turns are rendered as QwQ's template renders them.
QWQ_UNLISTED_TOOLS_TEMPLATE = "{%- set tools = none %}" + QWQ_CHAT_TEMPLATE
TEMPLATES = {"qwq": QWQ_CHAT_TEMPLATE, "qwq-unlisted-tools": QWQ_UNLISTED_TOOLS_TEMPLATE}

THINK_PREFIX = "<think>\n"


def opens_think(tokenizer) -> bool:
    """Whether the tokenizer's generation prompt already opened the reasoning block (QwQ's
    does): the verifiers then treat a completion without `</think>` as unfinished."""
    text = tokenizer.apply_chat_template([{"role": "user", "content": "x"}], tokenize=False,
                                         add_generation_prompt=True)
    return text.rstrip().endswith("<think>")


_MARK = "\x00qwqrl-turn-end\x00"


def tool_response_text(tokenizer, responses: list[str]) -> str:
    """The text between the end of an assistant turn that called tools and the next assistant
    turn's first sampled token: the turn's close, one `tool` turn holding every response (in call
    order), and the generation prompt (with QwQ's, `<think>\\n` again). For QwQ's template:

        <|im_end|>\\n<|im_start|>user\\n<tool_response>\\n...\\n</tool_response><|im_end|>\\n
        <|im_start|>assistant\\n<think>\\n

    Rendered by the tokenizer's template around a marker assistant turn, so whatever that
    template writes (role names, a forced `<think>`) is what the loop appends."""
    history = [{"role": "user", "content": "q"}, {"role": "assistant", "content": _MARK}]
    text = tokenizer.apply_chat_template(
        history + [{"role": "tool", "content": r} for r in responses],
        tokenize=False, add_generation_prompt=True)
    return text[text.index(_MARK) + len(_MARK):]


def split_tool_turns(tokenizer, completion: str) -> list[tuple[str, bool]]:
    """`completion` cut into consecutive segments, each `(text, written_by_model)`: the tool turns
    (`tool_response_text`'s text, found by the fixed text before the first response and after
    the last one) are not the model's, everything else is. A cold-start trace that calls tools
    trains only on the model's segments: the rollout loop appends the tool turns and masks them
    out of the RL loss, and predicting a tool's output (a product's digits) is noise, not skill."""
    head, tail = tool_response_text(tokenizer, [_MARK]).split(_MARK)
    segments: list[tuple[str, bool]] = []
    rest = completion
    while (start := rest.find(head)) >= 0 and (end := rest.find(tail, start + len(head))) >= 0:
        end += len(tail)
        segments += [(rest[:start], True), (rest[start:end], False)]
        rest = rest[end:]
    return [s for s in segments + [(rest, True)] if s[0]]

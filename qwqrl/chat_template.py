"""The QwQ chat template: ChatML turns, and a generation prompt that opens `<think>\\n`.

QwQ's usage guide forces every completion to start inside the reasoning block, so the model
cannot skip thinking; the verifiers therefore treat a completion without `</think>` as unfinished.
Earlier assistant turns keep only their answer (the text after `</think>`), as QwQ's template does.
"""

QWQ_CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{%- set content = message['content'] %}"
    "{%- if message['role'] == 'assistant' and '</think>' in content %}"
    "{%- set content = content.split('</think>')[-1].lstrip('\\n') %}"
    "{%- endif %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + content + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n<think>\\n' }}{%- endif %}"
)

THINK_PREFIX = "<think>\n"


def opens_think(tokenizer) -> bool:
    """Whether the tokenizer's generation prompt already opened the reasoning block (QwQ's
    does): the verifiers then treat a completion without `</think>` as unfinished."""
    text = tokenizer.apply_chat_template([{"role": "user", "content": "x"}], tokenize=False,
                                         add_generation_prompt=True)
    return text.rstrip().endswith("<think>")

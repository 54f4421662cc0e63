"""Training and evaluation data: load and validate records, mix sources, build prompts.

`load_source` turns one recipe `DataSource` into validated records, `MixtureSampler` draws a
stage's batches from several sources by weight (resumably), `mix_with_replay` keeps part of the
previous stage's data, and `to_messages`/`render_prompt` add the task's answer instruction and
apply the chat template. `synthetic` holds the built-in generators of the CPU demo.
"""
from qwqrl.data.mixture import MixtureSampler, mix_with_replay
from qwqrl.data.prompts import render_prompt, to_messages
from qwqrl.data.records import load_source, validate_record

__all__ = ["MixtureSampler", "load_source", "mix_with_replay", "render_prompt", "to_messages",
           "validate_record"]

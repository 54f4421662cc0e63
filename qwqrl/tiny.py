"""Tiny models and tokenizers built locally, for the CPU demo, the tests and GPU smoke runs.

Nothing is downloaded: the tokenizer is byte-level (any text round-trips, 256 byte tokens) plus
ChatML specials and `<think>`/`</think>` as single *ordinary* tokens (special tokens would be
stripped by `skip_special_tokens=True` and the verifiers could never see the closing tag).
The model is a randomly initialised Qwen2; `QWEN2_PRESETS` holds the shapes we use.
"""
from __future__ import annotations

from typing import Any

from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import (PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM,
                          Qwen2ForSequenceClassification)

from qwqrl.chat_template import QWQ_CHAT_TEMPLATE

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
THINK_TOKENS = ["<think>", "</think>"]

# Shapes: "tiny" is the demo model (~1M parameters, learns 3-digit addition on 2 CPU cores);
# the others mirror Qwen2.5-0.5B / 1.5B for GPU checks from random weights.
QWEN2_PRESETS: dict[str, dict[str, Any]] = {
    "tiny": dict(hidden_size=128, num_hidden_layers=4, num_attention_heads=4,
                 num_key_value_heads=2, intermediate_size=512, max_position_embeddings=1024),
    "0.5b": dict(hidden_size=896, num_hidden_layers=24, num_attention_heads=14,
                 num_key_value_heads=2, intermediate_size=4864, max_position_embeddings=32768),
    "1.5b": dict(hidden_size=1536, num_hidden_layers=28, num_attention_heads=12,
                 num_key_value_heads=2, intermediate_size=8960, max_position_embeddings=32768),
}


def build_tokenizer() -> PreTrainedTokenizerFast:
    """A byte-level tokenizer with the QwQ chat template; EOS is `<|im_end|>`."""
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {tok: i for i, tok in enumerate(sorted(alphabet))}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    backend.decoder = decoders.ByteLevel()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=backend, eos_token="<|im_end|>", pad_token="<|endoftext|>",
        bos_token=None, unk_token=None,
        additional_special_tokens=SPECIAL_TOKENS[1:],
    )
    tok.add_tokens(THINK_TOKENS)  # ordinary tokens: they survive skip_special_tokens
    tok.chat_template = QWQ_CHAT_TEMPLATE
    tok.padding_side = "left"
    return tok


def build_model(tokenizer: PreTrainedTokenizerFast, preset: str = "tiny", seed: int = 0,
                rope_scaling: Any = None, **overrides: Any) -> Qwen2ForCausalLM:
    """A randomly initialised Qwen2 whose vocabulary matches `tokenizer`; `rope_scaling` (a
    recipe `RopeScaling`) goes into its config before the model is built."""
    import torch

    from qwqrl.models import with_rope_scaling

    if preset not in QWEN2_PRESETS:
        raise ValueError(f"unknown model preset {preset!r}; expected one of {sorted(QWEN2_PRESETS)}")
    shape = {**QWEN2_PRESETS[preset], **overrides}
    config = Qwen2Config(
        vocab_size=len(tokenizer), tie_word_embeddings=True, rope_theta=10000.0,
        bos_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, **shape,
    )
    with_rope_scaling(config, rope_scaling)
    torch.manual_seed(seed)
    return Qwen2ForCausalLM(config)


def build_reward_model(tokenizer: PreTrainedTokenizerFast, preset: str = "tiny", seed: int = 0,
                       **overrides: Any) -> Qwen2ForSequenceClassification:
    """A randomly initialised Qwen2 reward model (one score) with `build_model`'s shapes and ids."""
    import torch

    with torch.device("meta"):  # only its config is wanted: no weights are allocated
        config = build_model(tokenizer, preset, seed, **overrides).config
    config.num_labels = 1
    config.tie_word_embeddings = False  # no LM head to tie
    torch.manual_seed(seed)
    return Qwen2ForSequenceClassification(config)

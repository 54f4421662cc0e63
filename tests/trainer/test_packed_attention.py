"""`qwqrl_packed` is a named attention implementation: models are built with it where the recipe
says sdpa (or nothing), transformers' own "sdpa" stays what it is, and the kernel equals sdpa on
the calls it hands back to sdpa (padded batches, generation with a KV cache) as on packed rows."""
from __future__ import annotations

import copy

import torch
from transformers import AttentionInterface, Qwen2Config, Qwen2ForCausalLM
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

from qwqrl import packed_attention
from qwqrl.config import ModelConfig
from qwqrl.models import attention_implementation, load_policy
from qwqrl.sequences import pack
from qwqrl.tiny import build_tokenizer
from tests.trainer.conftest import SMALL

PROMPTS = [[5, 6, 7], [8], [9, 10, 11, 12, 13, 14]]
COMPLETIONS = [[20, 21, 22, 23], [24, 25, 26, 27, 28, 29, 30, 31, 32], [33]]


def test_models_are_built_with_the_named_kernel_and_sdpa_is_left_alone() -> None:
    assert ALL_ATTENTION_FUNCTIONS["sdpa"] is sdpa_attention_forward
    assert ALL_ATTENTION_FUNCTIONS["qwqrl_packed"] is packed_attention.packed_sdpa_attention
    for requested in (None, "sdpa"):
        model = load_policy(ModelConfig.model_validate(
            {"tiny": {"overrides": SMALL}, "attn_implementation": requested}),
            build_tokenizer(), torch.device("cpu"))
        assert model.config._attn_implementation == "qwqrl_packed"
    assert attention_implementation("flash_attention_2") == "flash_attention_2"
    assert attention_implementation("eager") == "eager"


def twins() -> tuple[Qwen2ForCausalLM, Qwen2ForCausalLM]:
    """The same weights under transformers' sdpa and under qwqrl_packed."""
    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=97, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, intermediate_size=64, pad_token_id=0,
                         eos_token_id=1, attn_implementation="sdpa")
    sdpa = Qwen2ForCausalLM(config).eval()
    packed = Qwen2ForCausalLM(copy.deepcopy(config)).eval()
    packed.load_state_dict(sdpa.state_dict())
    packed.set_attn_implementation(packed_attention.NAME)
    assert sdpa.config._attn_implementation == "sdpa"
    return sdpa, packed


def test_packed_rows_padded_rows_and_generation_equal_sdpa() -> None:
    sdpa, packed = twins()
    calls: list[list[int] | None] = []
    original = packed_attention.packed_sdpa_attention

    def counting(*args, **kwargs):
        calls.append(packed_attention._sequence_starts(args[1], args[2], kwargs.get("position_ids")))
        return original(*args, **kwargs)

    AttentionInterface.register(packed_attention.NAME, counting)
    try:
        with torch.no_grad():
            for padding_free in (True, False):
                batch = pack(PROMPTS, COMPLETIONS, 0, torch.device("cpu"), padding_free=padding_free)
                inputs = dict(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                              position_ids=batch.position_ids, use_cache=False)
                torch.testing.assert_close(packed(**inputs).logits, sdpa(**inputs).logits,
                                           rtol=1e-5, atol=1e-5)
            left = torch.tensor([[0, 0, 5, 6, 7], [9, 10, 11, 12, 13]])
            kwargs = dict(attention_mask=(left != 0).long(), max_new_tokens=6, do_sample=False)
            assert torch.equal(packed.generate(left, **kwargs), sdpa.generate(left, **kwargs))
    finally:
        AttentionInterface.register(packed_attention.NAME, original)
    # the packed row went per sequence (3 starts in each of 2 layers); padded and cached calls did not
    assert [c for c in calls if c is not None] == [[0, 7, 17]] * 2
    assert len(calls) > 2

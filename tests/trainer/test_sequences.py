"""Chunked log-probs and padding-free micro-batches compute what the naive padded path computes.

The reference is the plainest computation there is: full padded logits from the model's own LM
head, log_softmax over the vocabulary, gather. Chunked (chunk_size far below the token count, so
several chunks and their recompute in backward are exercised) must match it in values and in
every parameter's gradient, with temperature and with LoRA on the LM head; the padding-free
layout must match the padded one for the policy, a PPO critic and an SFT completion loss.
"""
from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForTokenClassification, Qwen2Config, Qwen2ForCausalLM

from qwqrl import algorithms as alg
from qwqrl import packed_attention
from qwqrl.learner import micro_batches
from qwqrl.sequences import Packed, completion_logprobs, completion_values, pack

PAD = 0
# Mixed lengths: prompts 1-6 tokens, completions 0-9 (an empty one included).
PROMPTS = [[5, 6, 7], [8], [9, 10, 11, 12, 13, 14], [15, 16]]
COMPLETIONS = [[20, 21, 22, 23], [24, 25, 26, 27, 28, 29, 30, 31, 32], [], [33, 34]]


def tiny_lm(tied: bool = True) -> Qwen2ForCausalLM:
    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=97, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, intermediate_size=64, tie_word_embeddings=tied,
                         pad_token_id=PAD, attn_implementation=packed_attention.NAME)
    return Qwen2ForCausalLM(config).float()


def naive_logprobs(model: torch.nn.Module, batch: Packed, temperature: float) -> torch.Tensor:
    """The full (b, P + T, V) logits of the padded layout, log-softmaxed and gathered."""
    logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                   position_ids=batch.position_ids, use_cache=False).logits
    logits = logits[:, -batch.width - 1:-1] / temperature
    lp = logits.log_softmax(-1).gather(-1, batch.completion_ids[..., None])[..., 0]
    return lp * batch.completion_mask


def grads_of(model: torch.nn.Module, loss: torch.Tensor) -> dict[str, torch.Tensor]:
    model.zero_grad()
    loss.backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


def weighted(lp: torch.Tensor) -> torch.Tensor:
    """A loss that weighs every token differently, so a misplaced gradient cannot cancel out."""
    weights = torch.linspace(0.5, 2.0, lp.numel()).reshape(lp.shape)
    return (lp * weights).sum()


def assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], tol: float) -> None:
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=tol, atol=tol, msg=name)


@pytest.mark.parametrize("temperature", [1.0, 0.7])
@pytest.mark.parametrize("padding_free", [False, True])
def test_chunked_logprobs_and_gradients_equal_naive(temperature: float, padding_free: bool) -> None:
    model = tiny_lm()
    padded = pack(PROMPTS, COMPLETIONS, PAD, torch.device("cpu"), padding_free=False)
    batch = pack(PROMPTS, COMPLETIONS, PAD, torch.device("cpu"), padding_free=padding_free)
    expected = naive_logprobs(model, padded, temperature)
    want = grads_of(model, weighted(expected))
    lp, entropy = completion_logprobs(model, batch, temperature, with_entropy=True, chunk_size=3)
    got = grads_of(model, weighted(lp))
    torch.testing.assert_close(lp, expected, rtol=1e-5, atol=1e-5)
    assert_same(got, want, 1e-5)
    assert entropy is not None and not entropy.requires_grad
    full = model(input_ids=padded.input_ids, attention_mask=padded.attention_mask,
                 position_ids=padded.position_ids).logits[:, -padded.width - 1:-1] / temperature
    torch.testing.assert_close(entropy, alg.entropy_from_logits(full.detach()) * padded.completion_mask,
                               rtol=1e-5, atol=1e-5)
    with torch.no_grad():
        torch.testing.assert_close(completion_logprobs(model, batch, temperature, chunk_size=5)[0],
                                   expected.detach(), rtol=1e-5, atol=1e-5)


def test_chunked_logprobs_with_lora_on_the_lm_head() -> None:
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(tiny_lm(tied=False), LoraConfig(
        r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["q_proj", "v_proj", "lm_head"],
        init_lora_weights=False))  # non-zero B, so the adapters change the output
    assert any("lm_head.lora_A" in n for n, _ in model.named_parameters())
    padded = pack(PROMPTS, COMPLETIONS, PAD, torch.device("cpu"), padding_free=False)
    packed = pack(PROMPTS, COMPLETIONS, PAD, torch.device("cpu"))
    expected = naive_logprobs(model, padded, 0.8)
    want = grads_of(model, weighted(expected))
    assert any("lm_head.lora" in n and g.abs().sum() > 0 for n, g in want.items())
    lp, _ = completion_logprobs(model, packed, 0.8, chunk_size=4)
    torch.testing.assert_close(lp, expected, rtol=1e-5, atol=1e-5)
    assert_same(grads_of(model, weighted(lp)), want, 1e-5)


def test_padding_free_matches_padded_for_policy_loss_sft_loss_and_critic() -> None:
    padded = pack(PROMPTS, COMPLETIONS, PAD, torch.device("cpu"), padding_free=False)
    packed = pack(PROMPTS, COMPLETIONS, PAD, torch.device("cpu"))
    assert packed.input_ids.shape == (1, sum(map(len, PROMPTS)) + sum(map(len, COMPLETIONS)))
    assert packed.attention_mask is None
    torch.testing.assert_close(packed.completion_mask, padded.completion_mask)
    mask = padded.completion_mask.float()

    def policy_loss(batch: Packed) -> torch.Tensor:
        lp, _ = completion_logprobs(model, batch, 1.0)
        old = lp.detach() - 0.1 * mask
        adv = torch.tensor([1.0, -0.5, 0.3, 2.0])
        return alg.clipped_policy_loss(lp, old, adv, mask, eps_low=0.2, eps_high=0.28)[0]

    def sft_loss(batch: Packed) -> torch.Tensor:
        return -alg.masked_mean(completion_logprobs(model, batch, 1.0)[0], mask)

    model = tiny_lm()
    for loss_fn in (policy_loss, sft_loss):
        want_loss = loss_fn(padded)
        want = grads_of(model, want_loss)
        got_loss = loss_fn(packed)
        torch.testing.assert_close(got_loss, want_loss, rtol=1e-5, atol=1e-6)
        assert_same(grads_of(model, got_loss), want, 1e-5)

    torch.manual_seed(1)
    config = tiny_lm().config
    config.num_labels, config.classifier_dropout = 1, 0.0
    critic = AutoModelForTokenClassification.from_config(config)
    returns = torch.randn(mask.shape)
    values = completion_values(critic, padded)
    want_loss = alg.clipped_value_loss(values, values.detach() + 0.05, returns, mask, clip_range=0.2)[0]
    want = grads_of(critic, want_loss)
    values_packed = completion_values(critic, packed)
    torch.testing.assert_close(values_packed, values, rtol=1e-5, atol=1e-5)
    got_loss = alg.clipped_value_loss(values_packed, values_packed.detach() + 0.05, returns, mask,
                                      clip_range=0.2)[0]
    assert_same(grads_of(critic, got_loss), want, 1e-5)


def test_token_budget_counts_real_tokens() -> None:
    lengths = [10, 3, 7, 2, 9, 4]
    batches = micro_batches(lengths, size=8, budget=12)
    assert sorted(i for mb in batches for i in mb) == list(range(6))
    assert all(sum(lengths[i] for i in mb) <= 12 for mb in batches)
    # 3 + 4 + 5 real tokens fit a budget of 12; padded to the longest row they would be 15
    assert micro_batches([5, 3, 4], size=8, budget=12) == [[1, 2, 0]]
    assert micro_batches([5, 3, 4], size=8, budget=12, padded=True) == [[1, 2], [0]]
    assert [len(mb) for mb in micro_batches(lengths, size=4, budget=None)] == [4, 2]


def test_pack_rejects_an_empty_prompt() -> None:
    with pytest.raises(ValueError, match="prompt token"):
        pack([[]], [[1, 2]], PAD, torch.device("cpu"))

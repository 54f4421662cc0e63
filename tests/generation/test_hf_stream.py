"""`HFGenerator.generate_stream` yields the very samples `generate` returns, one prompt's group
at a time; `CopiedHFGenerator` samples from its own weights until `sync_weights` copies the
learner's (what asynchronous rollouts need: a generator the update cannot change mid-sample)."""
import pytest
import torch

from qwqrl.generation import SamplingParams, make_generator
from qwqrl.generation.base import shares_module, stream_by_prompt
from qwqrl.generation.hf import CopiedHFGenerator, HFGenerator


@pytest.mark.parametrize("batch_size", [2, 4, 12], ids=["groups-span-batches", "batch-cuts-a-group", "one-batch"])
def test_stream_holds_generate_samples_in_whole_groups(model, tok, prompts, batch_size):
    sampling = SamplingParams(max_new_tokens=6, temperature=1.0, top_k=0, top_p=1.0, seed=3)
    gen = HFGenerator(model, tok, batch_size=batch_size)
    whole = gen.generate(prompts, n=3, sampling=sampling)
    groups = list(gen.generate_stream(prompts, n=3, sampling=sampling))
    assert sorted(g[0].prompt_index for g in groups) == [0, 1]
    assert all(len(g) == 3 and {r.prompt_index for r in g} == {g[0].prompt_index} for g in groups)
    streamed = [r for g in sorted(groups, key=lambda g: g[0].prompt_index) for r in g]
    assert streamed == whole  # same tokens, log-probs, texts: the same RNG draws


def test_stream_by_prompt_splits_a_prompt_major_list(model, tok, prompts):
    rollouts = HFGenerator(model, tok).generate(prompts, n=2, sampling=SamplingParams(max_new_tokens=3, seed=0))
    assert [[r.prompt_index for r in g] for g in stream_by_prompt(rollouts, 2)] == [[0, 0], [1, 1]]


def test_copied_generator_keeps_its_weights_until_synced(model, tok, prompts):
    greedy = SamplingParams.make_greedy(max_new_tokens=5)
    copied = make_generator("hf_copy", model, tok)
    assert isinstance(copied, CopiedHFGenerator)
    assert shares_module(HFGenerator(model, tok), model) and not shares_module(copied, model)
    before = copied.generate(prompts, 1, greedy)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.5)  # the learner's update
    assert copied.generate(prompts, 1, greedy) == before
    copied.sync_weights(model)
    for a, b in zip(copied.model.parameters(), model.parameters()):
        assert torch.equal(a, b) and a.data_ptr() != b.data_ptr() and not a.requires_grad
    assert copied.generate(prompts, 1, greedy) == HFGenerator(model, tok).generate(prompts, 1, greedy)


def test_copied_generator_refuses_another_architecture(model, tok):
    copied = CopiedHFGenerator(model, tok)
    other = torch.nn.Linear(2, 2)
    with pytest.raises(ValueError, match="has no parameter"):
        copied.sync_weights(other)

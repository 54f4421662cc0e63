"""HFGenerator on the tiny model: shapes of the result, stopping, seeds, and above all that the
recorded log-probs equal a teacher-forced forward pass (the importance-sampling ratio's
denominator in the trainer)."""
import pytest
import torch

from qwqrl.generation import Generator, SamplingParams, make_generator
from qwqrl.generation.base import encode_prompts
from qwqrl.generation.hf import HFGenerator
from qwqrl.tiny import build_tokenizer

from .reference import chosen, expected_logprobs, teacher_forced_logits


def test_is_a_generator_and_groups_by_prompt(model, tok, prompts):
    gen = make_generator("hf", model, tok, batch_size=4)
    assert isinstance(gen, Generator)
    rollouts = gen.generate(prompts, n=3, sampling=SamplingParams(max_new_tokens=6, seed=0))
    assert [r.prompt_index for r in rollouts] == [0, 0, 0, 1, 1, 1]
    for r in rollouts:
        assert r.prompt_ids == tok(prompts[r.prompt_index], add_special_tokens=False)["input_ids"]
        assert len(r.logprobs) == len(r.completion_ids) > 0
        assert r.text == tok.decode(r.completion_ids, skip_special_tokens=True)


@pytest.mark.parametrize("sampling, eos_bias", [
    (SamplingParams(max_new_tokens=12, temperature=0.7, top_k=0, top_p=1.0, seed=1), 2.5),
    (SamplingParams(max_new_tokens=12, temperature=0.6, top_k=20, top_p=0.95, seed=2), 1.5),
    (SamplingParams(max_new_tokens=12, temperature=1.3, top_k=0, top_p=0.5, seed=3), 4.0),
], ids=["temperature-only", "qwq-defaults", "nucleus"])
def test_logprobs_match_teacher_forcing(model, tok, prompts, bias_logits, sampling, eos_bias):
    """Mixed stop/length rows in one left-padded batch, compared to unpadded forward passes.
    (eos_bias makes EOS likely enough that both finish reasons occur with these seeds.)"""
    bias_logits(model, tok.eos_token_id, eos_bias)
    rollouts = HFGenerator(model, tok, batch_size=3).generate(prompts, n=3, sampling=sampling)
    assert {r.finish_reason for r in rollouts} == {"stop", "length"}  # padding really happened
    for r in rollouts:
        torch.testing.assert_close(torch.tensor(r.logprobs), expected_logprobs(model, r, sampling),
                                   atol=1e-4, rtol=0)
        tempered = chosen(torch.log_softmax(teacher_forced_logits(model, r) / sampling.temperature, -1), r)
        if sampling.top_k == 0 and sampling.top_p == 1.0:  # the learner's log-probs, exactly
            torch.testing.assert_close(torch.tensor(r.logprobs), tempered, atol=1e-4, rtol=0)
        else:  # renormalising over the kept tokens only raises them
            assert all(lp >= t - 1e-5 for lp, t in zip(r.logprobs, tempered.tolist()))


def test_stops_at_eos_and_strips_the_rest(model, tok, prompts, bias_logits):
    bias_logits(model, tok.eos_token_id, 1.5)
    sampling = SamplingParams(max_new_tokens=8, seed=0)
    rollouts = HFGenerator(model, tok, batch_size=6).generate(prompts, n=3, sampling=sampling)
    assert {r.finish_reason for r in rollouts} == {"stop", "length"}
    for r in rollouts:
        eos_positions = [i for i, t in enumerate(r.completion_ids) if t == tok.eos_token_id]
        if r.finish_reason == "stop":
            assert eos_positions == [len(r.completion_ids) - 1]
            assert "<|im_end|>" not in r.text
        else:
            assert eos_positions == [] and len(r.completion_ids) == sampling.max_new_tokens
        assert tok.pad_token_id not in r.completion_ids


def test_length_when_budget_runs_out(model, tok, prompts, bias_logits):
    bias_logits(model, tok.eos_token_id, -100.0)
    rollouts = HFGenerator(model, tok).generate(prompts, n=2, sampling=SamplingParams(max_new_tokens=1, seed=0))
    assert all(r.finish_reason == "length" and len(r.completion_ids) == 1 for r in rollouts)


def test_stop_string(model, tok, prompts, bias_logits):
    bias_logits(model, tok.convert_tokens_to_ids("a"), 5.0)
    bias_logits(model, tok.eos_token_id, -100.0)
    sampling = SamplingParams(max_new_tokens=30, stop=["a"], seed=0)
    rollouts = HFGenerator(model, tok).generate(prompts, n=2, sampling=sampling)
    for r in rollouts:
        assert r.finish_reason == "stop"
        assert r.text.endswith("a") and r.text.count("a") == 1


def test_seed_is_deterministic_and_leaves_global_rng_alone(model, tok, prompts):
    gen = HFGenerator(model, tok)
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    first = gen.generate(prompts, n=2, sampling=SamplingParams(max_new_tokens=10, seed=7))
    assert torch.equal(torch.rand(1), expected_next)
    again = gen.generate(prompts, n=2, sampling=SamplingParams(max_new_tokens=10, seed=7))
    other = gen.generate(prompts, n=2, sampling=SamplingParams(max_new_tokens=10, seed=8))
    ids = lambda rs: [r.completion_ids for r in rs]  # noqa: E731
    assert ids(first) == ids(again) and ids(first) != ids(other)
    assert [r.logprobs for r in first] == [r.logprobs for r in again]


def test_greedy_is_argmax_with_untempered_logprobs(model, tok, prompts):
    greedy = SamplingParams.make_greedy(max_new_tokens=8)
    assert greedy.greedy and greedy.temperature == 0
    rollouts = HFGenerator(model, tok).generate(prompts, n=2, sampling=greedy)
    assert rollouts[0].completion_ids == rollouts[1].completion_ids  # n copies of one answer
    for r in rollouts:
        assert teacher_forced_logits(model, r).argmax(-1).tolist() == r.completion_ids
        torch.testing.assert_close(torch.tensor(r.logprobs), expected_logprobs(model, r, greedy), atol=1e-4, rtol=0)


def test_restores_train_mode_and_sync_is_a_no_op(model, tok, prompts):
    model.train()
    gen = HFGenerator(model, tok)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    gen.sleep()
    gen.sync_weights(model)
    gen.wake_up()
    gen.generate(prompts[:1], n=1, sampling=SamplingParams(max_new_tokens=3))
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    with pytest.raises(ValueError, match="shares its module"):
        gen.sync_weights(torch.nn.Linear(1, 1))


def test_peft_model_generates_with_adapter(model, tok, prompts):
    peft = pytest.importorskip("peft")
    lora = peft.get_peft_model(model, peft.LoraConfig(r=4, target_modules=["q_proj", "v_proj"],
                                                      init_lora_weights=False))
    sampling = SamplingParams(max_new_tokens=6, top_k=0, top_p=1.0, seed=0)
    rollouts = HFGenerator(lora, tok).generate(prompts, n=1, sampling=sampling)
    for r in rollouts:  # log-probs come from the adapted model, not the base
        torch.testing.assert_close(torch.tensor(r.logprobs), expected_logprobs(lora, r, sampling), atol=1e-4, rtol=0)


def test_rejects_bad_settings(model, tok):
    with pytest.raises(ValueError, match="top_p"):
        SamplingParams(top_p=0)
    with pytest.raises(ValueError, match="unknown generator kind"):
        make_generator("sglang", model, tok)
    right_padding = build_tokenizer()
    right_padding.padding_side = "right"
    with pytest.raises(ValueError, match="left-padding"):
        HFGenerator(model, right_padding)


def test_generate_ids_cuts_each_row_at_its_own_budget(model, tok, prompts):
    """The tool loop's entry point: a row with a smaller budget gets the first tokens of what it
    would have sampled with the batch's largest one, and ends with "length"."""
    ids = encode_prompts(tok, prompts)
    sampling = SamplingParams(max_new_tokens=40, temperature=1.0, top_k=0, top_p=1.0, seed=3)
    gen = HFGenerator(model, tok)
    free = gen.generate_ids(ids, sampling, max_new_tokens=[12, 12])
    cut = gen.generate_ids(ids, sampling, max_new_tokens=[5, 12])
    assert [r.prompt_index for r in cut] == [0, 1] and cut[0].prompt_ids == ids[0]
    assert cut[0].completion_ids == free[0].completion_ids[:5] and cut[0].finish_reason == "length"
    assert cut[0].logprobs == free[0].logprobs[:5]
    assert cut[1].completion_ids == free[1].completion_ids

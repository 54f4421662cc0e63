"""VLLMGenerator. On a machine without vLLM or CUDA only the import behaviour is tested; the
GPU tests skip with the reason and, where both exist, check that after `sync_weights` the
engine samples from the learner's weights: its log-probs equal a teacher-forced HF pass of the
learner's model under the same sampling settings (the importance-sampling contract)."""
import subprocess
import sys

import pytest
import torch

from qwqrl.generation import SamplingParams, make_generator
from qwqrl.tiny import build_model

from .reference import expected_logprobs

VLLM_ATOL = 2e-3  # float32 on both sides; different kernels (attention, matmul order)


def test_importing_the_backend_does_not_import_vllm():
    code = "import sys, qwqrl.generation, qwqrl.generation.vllm_backend; assert 'vllm' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_vllm_names_the_extra(tok, monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # what `import vllm` sees when it is absent
    with pytest.raises(ImportError, match=r"qwqrl\[vllm\]"):
        make_generator("vllm", "some/checkpoint", tok)


@pytest.fixture(scope="module")
def vllm_env():
    pytest.importorskip("vllm", reason="vLLM is not installed (optional extra qwqrl[vllm]); GPU-only test")
    if not torch.cuda.is_available():
        pytest.skip("vLLM tests need a CUDA GPU")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, tok):
    path = tmp_path_factory.mktemp("tiny")
    build_model(tok).save_pretrained(path)
    tok.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def engine(vllm_env, checkpoint, tok):
    from qwqrl.generation.vllm_backend import VLLMGenerator

    return VLLMGenerator(checkpoint, tok, gpu_memory_utilization=0.2, max_model_len=512, dtype="float32",
                         enforce_eager=True, seed=0)


def learner(tok, seed: int):
    """A float32 CUDA copy of the tiny model with different weights than the checkpoint."""
    return build_model(tok, seed=seed).cuda().eval()


def assert_sampled_from(model, rollouts, sampling):
    for r in rollouts:
        torch.testing.assert_close(torch.tensor(r.logprobs), expected_logprobs(model, r, sampling),
                                   atol=VLLM_ATOL, rtol=0)


@pytest.mark.vllm
def test_rollouts_grouped_with_eos_kept(engine, tok, prompts):
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
    again = engine.generate(prompts, n=3, sampling=sampling)
    assert [r.completion_ids for r in again] == [r.completion_ids for r in rollouts]


@pytest.mark.vllm
@pytest.mark.parametrize("sampling", [
    SamplingParams(max_new_tokens=24, temperature=0.7, top_k=0, top_p=1.0, seed=1),
    SamplingParams(max_new_tokens=24, seed=2),
    SamplingParams.make_greedy(max_new_tokens=24),
], ids=["temperature-only", "qwq-defaults", "greedy"])
def test_sync_then_logprobs_match_learner(engine, tok, prompts, sampling):
    model = learner(tok, seed=1)
    before = engine.generate(prompts, n=2, sampling=sampling)
    with pytest.raises(AssertionError):  # the engine still holds the checkpoint's weights
        assert_sampled_from(model, before, sampling)
    engine.sync_weights(model)
    assert_sampled_from(model, engine.generate(prompts, n=2, sampling=sampling), sampling)


@pytest.mark.vllm
def test_sleep_sync_wake_cycle(engine, tok, prompts):
    sampling = SamplingParams(max_new_tokens=12, seed=3)
    model = learner(tok, seed=2)
    engine.sleep()
    engine.sync_weights(model)  # wakes the weights only
    engine.wake_up()
    assert_sampled_from(model, engine.generate(prompts, n=2, sampling=sampling), sampling)


@pytest.mark.vllm
def test_sleep_level_2_requires_a_sync(engine, tok, prompts):
    sampling = SamplingParams(max_new_tokens=8, seed=4)
    model = learner(tok, seed=3)
    engine.sleep_level = 2
    try:
        engine.sleep()
        with pytest.raises(RuntimeError, match="sync_weights"):
            engine.generate(prompts, n=1, sampling=sampling)
        engine.sync_weights(model)
        assert_sampled_from(model, engine.generate(prompts, n=1, sampling=sampling), sampling)
    finally:
        engine.sleep_level = 1


@pytest.mark.vllm
def test_sync_merges_lora(engine, tok, prompts):
    peft = pytest.importorskip("peft")
    model = peft.get_peft_model(learner(tok, seed=4), peft.LoraConfig(
        r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)).eval()
    sampling = SamplingParams(max_new_tokens=12, seed=5)
    engine.sync_weights(model)
    assert_sampled_from(model, engine.generate(prompts, n=2, sampling=sampling), sampling)

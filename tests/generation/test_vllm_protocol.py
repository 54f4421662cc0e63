"""VLLMGenerator's own logic on CPU, against a stand-in `vllm` module that records calls: how
requests are built, how outputs become rollouts, and the sleep -> sync -> wake order. (Whether
the real vLLM honours these calls is test_vllm.py's job, on a GPU.)"""
import sys
import types
from types import SimpleNamespace

import pytest
import torch

from qwqrl.generation import SamplingParams
from qwqrl.generation.vllm_backend import VLLMGenerator
from qwqrl.tiny import build_model


class FakeLLM:
    """Answers request i, sample k with tokens [i, k, EOS] (stop) or [i, k, 7, 7] (length)."""

    def __init__(self, **kwargs):
        self.kwargs, self.calls, self.loaded = kwargs, [], []
        runner = SimpleNamespace(model=SimpleNamespace(load_weights=self.loaded.extend))
        self.llm_engine = SimpleNamespace(model_executor=SimpleNamespace(
            driver_worker=SimpleNamespace(model_runner=runner)))

    def generate(self, prompts, params, use_tqdm):
        self.calls.append(("generate", len(prompts)))
        self.params = params
        outputs = []
        for i, p in enumerate(params):
            completions = []
            for k in range(p.n):
                ids = [i, k, 256] if k % 2 == 0 else [i, k, 7, 7]
                completions.append(SimpleNamespace(
                    token_ids=ids, finish_reason="stop" if k % 2 == 0 else "length",
                    logprobs=[{t: SimpleNamespace(logprob=-0.5 * (j + 1))} for j, t in enumerate(ids)]))
            outputs.append(SimpleNamespace(outputs=completions))
        return outputs

    def sleep(self, level):
        self.calls.append(("sleep", level))

    def wake_up(self, tags):
        self.calls.append(("wake_up", tuple(tags)))

    def reset_prefix_cache(self):
        self.calls.append(("reset_prefix_cache",))


@pytest.fixture
def fake_vllm(monkeypatch):
    module = types.ModuleType("vllm")
    module.LLM = FakeLLM
    module.SamplingParams = lambda **kw: SimpleNamespace(**kw)
    monkeypatch.setitem(sys.modules, "vllm", module)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    # set here so that the generator's setdefault leaves them, and monkeypatch restores them
    for key, value in {"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0",
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29555"}.items():
        monkeypatch.setenv(key, value)
    return module


def test_engine_arguments_and_requests(fake_vllm, tok, prompts):
    gen = VLLMGenerator("ckpt", tok, seed=5, max_model_len=512)
    assert gen.llm.kwargs["logprobs_mode"] == "processed_logprobs"
    assert gen.llm.kwargs["distributed_executor_backend"] == "external_launcher"
    assert gen.llm.kwargs["seed"] == 5 and gen.llm.kwargs["enable_sleep_mode"]
    rollouts = gen.generate(prompts, n=2, sampling=SamplingParams(max_new_tokens=9, stop=["</think>"], seed=100))
    params = gen.llm.params
    assert [p.seed for p in params] == [100, 102]  # vLLM adds the sample index: no overlap
    assert params[0].logprobs == 0 and params[0].max_tokens == 9 and params[0].top_k == 20
    assert params[0].stop == ["</think>"] and params[0].detokenize
    assert [(r.prompt_index, r.finish_reason) for r in rollouts] == [(0, "stop"), (0, "length"), (1, "stop"), (1, "length")]
    assert rollouts[2].completion_ids == [1, 0, 256] and rollouts[2].logprobs == [-0.5, -1.0, -1.5]
    assert rollouts[2].text == tok.decode([1, 0, 256], skip_special_tokens=True)
    assert rollouts[0].prompt_ids == tok(prompts[0], add_special_tokens=False)["input_ids"]


def test_sleep_sync_wake_order(fake_vllm, tok, prompts):
    gen = VLLMGenerator("ckpt", tok)
    gen.sleep()
    gen.sync_weights(build_model(tok))
    gen.generate(prompts, n=1, sampling=SamplingParams(max_new_tokens=4))
    assert gen.llm.calls == [("sleep", 1), ("wake_up", ("weights",)), ("reset_prefix_cache",),
                             ("wake_up", ("kv_cache",)), ("generate", 2)]
    names = [name for name, _ in gen.llm.loaded]
    assert names == [name for name, _ in build_model(tok).named_parameters()]


def test_level_2_refuses_stale_weights(fake_vllm, tok, prompts):
    gen = VLLMGenerator("ckpt", tok, sleep_level=2)
    gen.sleep()
    with pytest.raises(RuntimeError, match="sync_weights"):
        gen.generate(prompts, n=1, sampling=SamplingParams(max_new_tokens=4))
    gen.sync_weights(build_model(tok))
    gen.wake_up()
    gen.wake_up()  # idempotent
    assert gen.llm.calls[-1] == ("wake_up", ("kv_cache",))
    gen.generate(prompts, n=1, sampling=SamplingParams(max_new_tokens=4))


def test_sleep_mode_off_is_a_no_op(fake_vllm, tok):
    gen = VLLMGenerator("ckpt", tok, enable_sleep_mode=False)
    gen.sleep()
    gen.wake_up()
    assert gen.llm.calls == []

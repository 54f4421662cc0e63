"""VLLMGenerator's own logic, against a stand-in `vllm` module that records calls: how requests
are built, how outputs become rollouts, how the engine is built from a learner, and the sleep ->
sync -> wake order, which the real engine can only show on a GPU (vLLM has no sleep mode on CPU).
Whether the real vLLM honours these calls is test_vllm.py's job (`make test-vllm`)."""
import contextlib
import json
import sys
import types
from pathlib import Path
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
        self.config = json.loads((Path(kwargs["model"]) / "config.json").read_text()) \
            if kwargs.get("load_format") == "dummy" else {}
        hf_config = SimpleNamespace(tie_word_embeddings=self.config.get("tie_word_embeddings", True))
        self.llm_engine = SimpleNamespace(model_config=SimpleNamespace(hf_config=hf_config))
        self.worker = SimpleNamespace(vllm_config=None, reload_weights=self._reload)

    def _reload(self, weights_iterator):
        self.loaded.extend(weights_iterator)

    def collective_rpc(self, method, args=()):
        self.calls.append(("reload_weights",))
        method(self.worker, *args)

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
        return True


@pytest.fixture
def fake_vllm(monkeypatch):
    module = types.ModuleType("vllm")
    module.LLM = FakeLLM
    module.SamplingParams = lambda **kw: SimpleNamespace(**kw)
    monkeypatch.setitem(sys.modules, "vllm", module)
    monkeypatch.setitem(sys.modules, "vllm.config", SimpleNamespace(
        set_current_vllm_config=lambda config: contextlib.nullcontext()))
    monkeypatch.setitem(sys.modules, "vllm.platforms", SimpleNamespace(
        current_platform=SimpleNamespace(is_sleep_mode_available=lambda: True)))  # as on CUDA
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
    assert gen.llm.calls == [("sleep", 1), ("wake_up", ("weights",)), ("reload_weights",),
                             ("reset_prefix_cache",), ("wake_up", ("kv_cache",)), ("generate", 2)]


def test_one_streamed_push_of_private_copies_with_the_tied_head(fake_vllm, tok):
    model = build_model(tok)
    gen = VLLMGenerator("ckpt", tok)
    gen.sync_weights(model)
    assert gen.llm.calls.count(("reload_weights",)) == 1
    names = [name for name, _ in gen.llm.loaded]
    expected = [name for name, _ in model.named_parameters()]
    at = expected.index("model.embed_tokens.weight") + 1
    assert names == expected[:at] + ["lm_head.weight"] + expected[at:]
    params = dict(model.named_parameters())
    for name, tensor in gen.llm.loaded:  # vLLM holds them until a layer is complete: copies
        source = params["model.embed_tokens.weight" if name == "lm_head.weight" else name]
        assert torch.equal(tensor, source) and tensor.data_ptr() != source.data_ptr()


def test_engine_built_from_the_learner(fake_vllm, tok):
    """The engine gets the learner's config as it is in memory (architecture, rope scaling),
    placeholder weights, the learner's dtype, and the learner's weights at once."""
    model = build_model(tok).to(torch.bfloat16)
    model.config.rope_scaling = {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 256}
    gen = VLLMGenerator(model, tok)
    assert gen.llm.kwargs["load_format"] == "dummy" and gen.llm.kwargs["dtype"] == "bfloat16"
    config = gen.llm.config
    assert config["architectures"] == ["Qwen2ForCausalLM"]
    assert config["hidden_size"] == model.config.hidden_size
    assert "yarn" in json.dumps(config) and model.config.architectures is None  # the learner's is untouched
    assert gen.llm.calls == [("reload_weights",), ("reset_prefix_cache",)]
    assert Path(gen.llm.kwargs["model"], "tokenizer_config.json").exists()


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


def test_generate_ids_continues_token_ids_with_a_budget_per_row(fake_vllm, tok):
    """The multi-turn tool loop's entry point: one request per row of ids, each with its own
    max_tokens, seeds one apart; no rows submits nothing."""
    gen = VLLMGenerator("ckpt", tok)
    rows = [[1, 2, 3], [4, 5]]
    rollouts = gen.generate_ids(rows, SamplingParams(max_new_tokens=50, seed=7, stop=["</tool_call>"]),
                                max_new_tokens=[10, 3])
    params = gen.llm.params
    assert [(p.n, p.max_tokens, p.seed) for p in params] == [(1, 10, 7), (1, 3, 8)]
    assert params[0].stop == ["</tool_call>"]
    assert [(r.prompt_index, r.prompt_ids) for r in rollouts] == [(0, [1, 2, 3]), (1, [4, 5])]
    assert gen.generate_ids([], SamplingParams()) == []
    assert gen.llm.calls.count(("generate", 2)) == 1 and len(gen.llm.calls) == 1

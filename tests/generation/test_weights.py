"""iter_full_weights: the tensors a weight sync pushes to vLLM, checked against HF state dicts.

Also the HF generator on a ZeRO-3 engine (single rank, CPU): partitioned parameters must be
gathered for the sync and generation must match the unpartitioned model token for token.
"""
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from qwqrl.generation import SamplingParams
from qwqrl.generation.hf import HFGenerator
from qwqrl.generation.weights import base_weight_name, is_zero3_partitioned, iter_full_weights
from qwqrl.tiny import build_model

peft = pytest.importorskip("peft")


def lora(model):
    # init_lora_weights=False: B is random, so the merged delta is not zero
    return peft.get_peft_model(model, peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                                      init_lora_weights=False))


def collect(model) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().clone() for name, tensor in iter_full_weights(model)}


def expected_merged(peft_model, base_ref: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """base weights with W + scaling * B @ A written out by hand for every adapted layer."""
    expected = dict(base_ref)
    for name, module in peft_model.named_modules():
        if hasattr(module, "lora_A") and "default" in module.lora_A:
            a, b = module.lora_A["default"].weight, module.lora_B["default"].weight
            key = base_weight_name(f"{name}.weight")
            expected[key] = base_ref[key] + module.scaling["default"] * (b @ a)
    return expected


def test_base_weight_name():
    assert base_weight_name("base_model.model.model.layers.0.self_attn.q_proj.base_layer.weight") == \
        "model.layers.0.self_attn.q_proj.weight"
    assert base_weight_name("model.embed_tokens.weight") == "model.embed_tokens.weight"


def test_plain_model_yields_named_parameters(tok):
    model = build_model(tok)
    got = collect(model)
    params = dict(model.named_parameters())
    assert list(got) == list(params)
    # the state dict only adds lm_head, tied to the embeddings (vLLM re-ties it on load)
    assert set(model.state_dict()) - set(got) == {"lm_head.weight"}
    assert all(torch.equal(got[k], params[k]) for k in got)


def test_lora_merged_under_base_names_and_unmerged_after(tok):
    base_ref = {k: v.detach().clone() for k, v in build_model(tok).named_parameters()}
    model = lora(build_model(tok))
    got = collect(model)
    assert {k: v.shape for k, v in got.items()} == {k: v.shape for k, v in base_ref.items()}
    expected = expected_merged(model, base_ref)
    q = "model.layers.0.self_attn.q_proj.weight"
    assert not torch.allclose(expected[q], base_ref[q])  # the check below is not vacuous
    for key in got:
        torch.testing.assert_close(got[key], expected[key], atol=1e-6, rtol=1e-5)
    layer = model.base_model.model.model.layers[0].self_attn.q_proj
    assert not layer.merged and torch.equal(layer.base_layer.weight, base_ref[q])


@pytest.fixture(scope="module")
def zero3():
    """A function wrapping a model in a single-rank ZeRO-3 DeepSpeed engine on CPU."""
    deepspeed = pytest.importorskip("deepspeed")
    with pytest.MonkeyPatch.context() as env:
        if not torch.distributed.is_initialized():
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            for key, value in {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1",
                               "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}.items():
                env.setenv(key, value)

        def wrap(model):
            trainable = [p for p in model.parameters() if p.requires_grad]
            engine, *_ = deepspeed.initialize(
                model=model, optimizer=torch.optim.AdamW(trainable, lr=1e-4),
                config={"train_micro_batch_size_per_gpu": 1, "zero_optimization": {"stage": 3}})
            assert is_zero3_partitioned(engine.module)
            return engine
        yield wrap


def test_zero3_gathers_full_weights(tok, zero3):
    base_ref = {k: v.detach().clone() for k, v in build_model(tok).named_parameters()}
    engine = zero3(build_model(tok))
    got = collect(engine)
    assert list(got) == list(base_ref)
    assert all(torch.equal(got[k], base_ref[k]) for k in got)
    assert next(engine.module.parameters()).numel() == 0  # re-partitioned afterwards


def test_zero3_lora_merges_gathered_weights(tok, zero3):
    base_ref = {k: v.detach().clone() for k, v in build_model(tok).named_parameters()}
    model = lora(build_model(tok))
    expected = expected_merged(model, base_ref)  # adapters are still whole here
    got = collect(zero3(model))
    assert list(got) == list(base_ref)
    for key in got:
        torch.testing.assert_close(got[key], expected[key], atol=1e-6, rtol=1e-5)


def test_hf_generation_on_zero3_engine_matches_plain_model(tok, prompts, zero3):
    sampling = SamplingParams(max_new_tokens=6, seed=0)
    plain = HFGenerator(build_model(tok), tok).generate(prompts, n=2, sampling=sampling)
    sharded = HFGenerator(zero3(build_model(tok)), tok).generate(prompts, n=2, sampling=sampling)
    assert [r.completion_ids for r in sharded] == [r.completion_ids for r in plain]
    for a, b in zip(sharded, plain):
        torch.testing.assert_close(torch.tensor(a.logprobs), torch.tensor(b.logprobs), atol=1e-5, rtol=0)


@pytest.mark.slow  # two DeepSpeed processes: ~20-30 s on 2 cores
def test_hf_generation_across_zero3_ranks(tmp_path):
    """Two CPU ranks (see zero3_ranks.py): synced_gpus keeps early finishers stepping."""
    pytest.importorskip("deepspeed")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    worker = Path(__file__).with_name("zero3_ranks.py")
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                           "--master_port", str(port), str(worker)],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "rank 0 ok" in done.stdout and "rank 1 ok" in done.stdout

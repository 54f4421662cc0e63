"""Full, unsharded, adapter-merged weights of the learner, named as the base checkpoint names them.

A weight sync needs every tensor of the policy as vLLM's `load_weights` expects it: whole (not a
ZeRO-3 shard), with LoRA folded in, and under the plain HF name
(`model.layers.0.self_attn.q_proj.weight`, not peft's
`base_model.model.model.layers.0.self_attn.q_proj.base_layer.weight`).

ZeRO-3 gathering is collective: every rank must iterate `iter_full_weights` to the end, also
ranks that load nothing. Without LoRA each parameter is gathered alone (peak memory: one full
weight); with LoRA the whole model is gathered at once, because peft merges layer by layer and
needs base and adapter weights together. Tied parameters (lm_head = embed_tokens) come once,
under their first name, as `named_parameters` does; vLLM ties them again on load.

LoRA is merged one layer at a time with peft's own `merge()` (so every tuner peft can merge,
DoRA and the LoRA variants included), and the layer's base weights are then restored from a copy
instead of trusting `unmerge()`: (W + BA) - BA is not W in floating point (off by an ulp here
and there even in fp32), and in bf16 under ZeRO 0-2 that error would accumulate in the frozen
base over hundreds of syncs. The copy costs one layer's weight at a time.
"""
from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any

import torch

PEFT_WRAPPER_PREFIX = "base_model.model."


def unwrap_model(model: Any) -> Any:
    """The trainable module inside a DeepSpeed engine (`engine.module`), or `model` itself."""
    deepspeed = sys.modules.get("deepspeed")  # an engine exists only if deepspeed was imported
    if deepspeed is None:
        return model
    return model.module if isinstance(model, deepspeed.DeepSpeedEngine) else model


def is_zero3_partitioned(model: torch.nn.Module) -> bool:
    """True when ZeRO-3 has replaced the parameters by shards (they carry a `ds_id`)."""
    return any(hasattr(p, "ds_id") for p in model.parameters())


def gathered(params: list[torch.nn.Parameter], partitioned: bool) -> contextlib.AbstractContextManager:
    """Materialise ZeRO-3 shards as full tensors for the duration of the block (read-only)."""
    if not partitioned:
        return contextlib.nullcontext()
    import deepspeed

    return deepspeed.zero.GatheredParameters(params, modifier_rank=None)


def base_weight_name(name: str) -> str:
    """peft parameter name -> the base checkpoint's name; plain names pass through."""
    return name.removeprefix(PEFT_WRAPPER_PREFIX).replace(".base_layer", "").replace(
        ".modules_to_save.default", "")


def iter_full_weights(model: Any) -> Iterator[tuple[str, torch.Tensor]]:
    """Yield (base name, full tensor) for every weight of `model`, adapters merged.

    `model`: a plain HF model, a peft model, or a DeepSpeed engine around either. Each tensor is
    a view of live (or gathered) storage, valid only until the next item: load or copy it
    before advancing. Adapter weights and peft's `original_module` copies are skipped.
    """
    module = unwrap_model(model)
    partitioned = is_zero3_partitioned(module)
    if not hasattr(module, "merge_adapter"):  # plain model: gather one weight at a time
        for name, param in module.named_parameters():
            with gathered([param], partitioned):
                yield name, param.data
        return

    from peft.tuners.tuners_utils import BaseTunerLayer

    tuner_layers = {name: m for name, m in module.named_modules() if isinstance(m, BaseTunerLayer)}
    adapter_prefix = module.prefix  # "lora_" for LoRA: the adapter parameters' name marker
    with gathered(list(module.parameters()), partitioned):
        for name, param in module.named_parameters():
            if adapter_prefix in name or ".original_module." in name:
                continue
            with _merged(tuner_layers.get(name.rpartition(".base_layer.")[0])):
                yield base_weight_name(name), param.data


@contextlib.contextmanager
def _merged(layer: Any) -> Iterator[None]:
    """Merge one peft layer's active adapters into its base weights, then restore them exactly."""
    if layer is None:
        yield
        return
    base_params = list(layer.get_base_layer().parameters())
    saved = [p.data.clone() for p in base_params]
    layer.merge()
    try:
        yield
    finally:
        layer.unmerge()
        for param, original in zip(base_params, saved):
            param.data.copy_(original)

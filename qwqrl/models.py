"""Loading the policy, its tokenizer, and the models made from it: KL reference, PPO critic.

One place decides dtype, rope scaling (YaRN for long inputs), attention kernel, gradient
checkpointing, LoRA and the chat template, so every stage and `qwqrl eval` load models alike.

Under ZeRO-3 (`trainer.zero_stage: 3`) no model is ever whole on a rank: a checkpoint is loaded
inside `deepspeed.zero.Init` (`partitioned_init`), so each rank allocates only its shard and
transformers copies the weights in one module at a time; the DeepSpeed engine then takes the
partitioned model as it is. A random build (the tiny presets) is the exception: transformers 5
cannot initialise random weights inside zero.Init (`_init_weights` indexes the already-
partitioned embedding), so it is built whole, which is fine for models small enough to be random.
"""
from __future__ import annotations

import contextlib
import copy
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from transformers import (AutoConfig, AutoModelForCausalLM, AutoTokenizer, PretrainedConfig,
                          PreTrainedModel, PreTrainedTokenizerBase)

from qwqrl import packed_attention
from qwqrl.chat_template import TEMPLATES
from qwqrl.config import ModelConfig, RopeScaling, TokenizerConfig, TrainerConfig
from qwqrl.distributed import forget_stale_deepspeed_groups
from qwqrl.errors import UserError
from qwqrl.generation.weights import gathered, is_zero3_partitioned


def torch_dtype(name: str, device: torch.device) -> torch.dtype:
    if name == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return getattr(torch, name)


def load_tokenizer(cfg: TokenizerConfig, model_cfg: ModelConfig,
                   path: str | None = None) -> PreTrainedTokenizerBase:
    """The tokenizer from `path` (a checkpoint), the recipe's, or the tiny builder's."""
    source = path or cfg.path or model_cfg.path
    if source is None:
        from qwqrl.tiny import build_tokenizer
        tok = build_tokenizer()
    else:
        try:
            tok = AutoTokenizer.from_pretrained(source)
        except OSError as e:
            raise UserError(f"tokenizer: cannot load {source!r}: {e}") from None
    if cfg.chat_template in TEMPLATES:
        tok.chat_template = TEMPLATES[cfg.chat_template]
    elif cfg.chat_template != "model":
        tok.chat_template = cfg.chat_template
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"
    return tok


def attention_implementation(requested: str | None) -> str:
    """The attention kernel models are built with: what the recipe names (flash-attention reads
    packed rows as varlen), except sdpa or unset, which become `qwqrl_packed`: sdpa that attends
    per sequence in the learner's packed rows (`packed_attention`)."""
    return packed_attention.NAME if requested in (None, "sdpa") else requested


@contextlib.contextmanager
def partitioned_init(trainer: TrainerConfig | None, dtype: torch.dtype) -> Iterator[None]:
    """While open, transformers loads models inside `deepspeed.zero.Init` if `trainer` says
    ZeRO-3 (through `HfDeepSpeedConfig`, which it consults while the object lives); otherwise
    nothing changes. The engine config is the one the Learner builds, so shards match."""
    if trainer is None or trainer.zero_stage != 3:
        yield
        return
    from transformers.integrations import HfDeepSpeedConfig
    from transformers.integrations.deepspeed import unset_hf_deepspeed_config

    from qwqrl.learner import deepspeed_config

    keep_alive = HfDeepSpeedConfig(deepspeed_config(trainer, bf16=dtype == torch.bfloat16))
    try:
        yield
    finally:
        del keep_alive
        unset_hf_deepspeed_config()


def load_policy(cfg: ModelConfig, tokenizer: PreTrainedTokenizerBase, device: torch.device,
                path: str | None = None, seed: int = 0,
                trainer: TrainerConfig | None = None) -> PreTrainedModel:
    """The trainable model: from `path` (a previous stage), the recipe's path, or the builder.

    With `trainer` at ZeRO-3 a checkpoint is loaded partitioned (`partitioned_init`): its
    forward works once the Learner's engine holds it.
    """
    dtype = torch_dtype(cfg.dtype, device)
    source = path or cfg.path
    attention = attention_implementation(cfg.attn_implementation)
    if source is None:
        from qwqrl.tiny import build_model
        model = build_model(tokenizer, cfg.tiny.preset, seed=cfg.tiny.seed + seed,
                            rope_scaling=cfg.rope_scaling, attn_implementation=attention,
                            **cfg.tiny.overrides).to(dtype)
    else:
        try:
            config = AutoConfig.from_pretrained(source)
            with_rope_scaling(config, cfg.rope_scaling)
            with partitioned_init(trainer, dtype):
                model = AutoModelForCausalLM.from_pretrained(source, config=config, dtype=dtype,
                                                             attn_implementation=attention)
        except OSError as e:
            raise UserError(f"model: cannot load {source!r}: {e}") from None
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        model.config.use_cache = False
    if cfg.lora is not None:
        from peft import LoraConfig, get_peft_model
        model = get_peft_model(model, LoraConfig(
            r=cfg.lora.r, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout,
            target_modules=cfg.lora.target_modules, task_type="CAUSAL_LM"))
    return model if is_zero3_partitioned(model) else model.to(device)


def with_rope_scaling(config: PretrainedConfig, scaling: RopeScaling | None) -> PretrainedConfig:
    """Put the recipe's rope scaling (YaRN) into `config`, before the model is built from it.

    transformers 5 builds the rotary embedding's frequencies in the model's constructor from
    `config.rope_parameters` (which also holds `rope_theta`; `rope_scaling` is its deprecated
    alias), so scaling set on a built model would never apply. Saved checkpoints carry it in
    config.json, and later stages load it from there. None leaves the config as it is.
    """
    if scaling is not None:
        current = dict(config.rope_parameters or {})
        config.rope_parameters = {
            "rope_theta": current.get("rope_theta", config.default_theta),
            "rope_type": scaling.rope_type, "factor": scaling.factor,
            "original_max_position_embeddings": scaling.original_max_position_embeddings}
        config.standardize_rope_params()
        config.validate_rope()
    return config


def rope_scaling_of(config: PretrainedConfig) -> dict[str, Any] | None:
    """The config's rope scaling as the inference engine takes it (vLLM's `rope_scaling` /
    `hf_overrides`), so rollouts and the learner use the same positions; None: plain RoPE."""
    params = dict(config.rope_parameters or {})
    if params.get("rope_type", "default") == "default":
        return None
    params.pop("rope_theta", None)
    return params


def reference_model(model: PreTrainedModel, trainer: TrainerConfig) -> torch.nn.Module:
    """The frozen KL reference (built only when kl.beta > 0): the policy's initial weights.

    Without ZeRO-3 a deep copy, eval mode, no gradients. Under ZeRO-3 a DeepSpeed inference
    engine partitioned like the policy (TRL's `prepare_deepspeed` does the same), so each rank
    holds 1/world of it: reloaded from the policy's checkpoint inside `partitioned_init`, or, for
    a random build (whole anyway, see the module docstring), copied and partitioned by the
    engine. LoRA adapters start at zero, so the base model is the reference.
    """
    if trainer.zero_stage != 3:
        ref = copy.deepcopy(model).eval()
        ref.requires_grad_(False)
        return ref
    import deepspeed

    from qwqrl.learner import deepspeed_config

    base = _base(model)
    dtype = next(base.parameters()).dtype
    if base.name_or_path:
        with partitioned_init(trainer, dtype):
            ref = AutoModelForCausalLM.from_pretrained(
                base.name_or_path, config=copy.deepcopy(base.config), dtype=dtype,
                attn_implementation=base.config._attn_implementation)
    else:
        ref = copy.deepcopy(model)
    ref.requires_grad_(False)
    config = deepspeed_config(trainer, bf16=dtype == torch.bfloat16)
    forget_stale_deepspeed_groups()
    engine, *_ = deepspeed.initialize(model=ref, config=config)
    engine.eval()
    return engine


def critic_model(policy: torch.nn.Module, trainer: TrainerConfig, device: torch.device,
                 seed: int = 0) -> PreTrainedModel:
    """The PPO value model: the policy's initial backbone (LoRA-free) with a fresh one-score head.

    Loaded from the policy's checkpoint when it has one (partitioned under ZeRO-3, like the
    policy); a random build's backbone is copied, gathered first if the engine already holds it.
    The head is drawn from its own generator seeded with `seed`, so it is the same whatever the
    world size or ZeRO stage (transformers would draw it from the global RNG, on rank 0 only
    under zero.Init).
    """
    from transformers import AutoModelForTokenClassification

    base = _base(policy)
    config = copy.deepcopy(base.config)
    config.num_labels = 1
    dtype = next(base.parameters()).dtype
    if base.name_or_path:
        with partitioned_init(trainer, dtype):
            critic = AutoModelForTokenClassification.from_pretrained(
                base.name_or_path, config=config, dtype=dtype,
                attn_implementation=config._attn_implementation)
    else:
        critic = AutoModelForTokenClassification.from_config(config)
        with gathered(list(base.model.parameters()), is_zero3_partitioned(base.model)):
            state = {k.replace(".base_layer", ""): v.clone() for k, v in base.model.state_dict().items()
                     if "lora_" not in k}
        critic.model.load_state_dict(state)
        critic.to(dtype=dtype)
    _fresh_head(critic.score, config.initializer_range, seed)
    return critic if is_zero3_partitioned(critic) else critic.to(device)


def _fresh_head(head: torch.nn.Linear, std: float, seed: int) -> None:
    """transformers' init of a linear head, N(0, std) weights and a zero bias, drawn from `seed`."""
    scope: contextlib.AbstractContextManager = contextlib.nullcontext()
    if is_zero3_partitioned(head):
        import deepspeed
        scope = deepspeed.zero.GatheredParameters(list(head.parameters()), modifier_rank=0)
    with scope, torch.no_grad():
        weight = torch.randn(head.weight.shape, generator=torch.Generator().manual_seed(seed)) * std
        head.weight.copy_(weight.to(head.weight.dtype))
        if head.bias is not None:
            head.bias.zero_()


def _base(model: torch.nn.Module) -> PreTrainedModel:
    """The transformers model under a peft wrapper (the model itself without one)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def save_pretrained_atomic(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
                           out: Path, state_dict: dict[str, torch.Tensor] | None = None) -> Path:
    """Write an HF checkpoint (LoRA merged) to `out` via a temp dir, so readers never see half."""
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    if hasattr(model, "merge_and_unload"):  # peft: save plain merged weights, keep the adapter
        model = copy.deepcopy(model).merge_and_unload()
    model.save_pretrained(tmp, safe_serialization=True, state_dict=state_dict)
    tokenizer.save_pretrained(tmp)
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    return out

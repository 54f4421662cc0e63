"""Loading the policy, its tokenizer and (when KL is on) a frozen reference model.

One place decides dtype, rope scaling (YaRN for long inputs), attention kernel, gradient
checkpointing, LoRA and the chat template, so every stage and `qwqrl eval` load models alike.
"""
from __future__ import annotations

import copy
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from transformers import (AutoConfig, AutoModelForCausalLM, AutoTokenizer, PretrainedConfig,
                          PreTrainedModel, PreTrainedTokenizerBase)

from qwqrl.chat_template import TEMPLATES
from qwqrl.config import ModelConfig, RopeScaling, TokenizerConfig, TrainerConfig
from qwqrl.errors import UserError


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


def load_policy(cfg: ModelConfig, tokenizer: PreTrainedTokenizerBase, device: torch.device,
                path: str | None = None, seed: int = 0) -> PreTrainedModel:
    """The trainable model: from `path` (a previous stage), the recipe's path, or the builder."""
    dtype = torch_dtype(cfg.dtype, device)
    source = path or cfg.path
    kwargs: dict[str, Any] = {"dtype": dtype}
    if cfg.attn_implementation:
        kwargs["attn_implementation"] = cfg.attn_implementation
    if source is None:
        from qwqrl.tiny import build_model
        model = build_model(tokenizer, cfg.tiny.preset, seed=cfg.tiny.seed + seed,
                            rope_scaling=cfg.rope_scaling, **cfg.tiny.overrides).to(dtype)
    else:
        try:
            config = AutoConfig.from_pretrained(source)
            with_rope_scaling(config, cfg.rope_scaling)
            model = AutoModelForCausalLM.from_pretrained(source, config=config, **kwargs)
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
    return model.to(device)


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
    holds 1/world of it. A policy loaded from a checkpoint is reloaded from that path inside
    `deepspeed.zero.Init` (transformers partitions at load: the whole model never exists on a
    rank); a random build (the tiny presets) is copied whole and partitioned by the engine, since
    transformers 5 cannot initialise random weights inside zero.Init (`_init_weights` indexes the
    already-partitioned embedding). LoRA adapters start at zero, so the base model is the reference.
    """
    if trainer.zero_stage != 3:
        ref = copy.deepcopy(model).eval()
        ref.requires_grad_(False)
        return ref
    import deepspeed
    from transformers.integrations import HfDeepSpeedConfig

    from qwqrl.learner import deepspeed_config

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    dtype = next(base.parameters()).dtype
    config = deepspeed_config(trainer, bf16=dtype == torch.bfloat16)
    source = base.name_or_path
    if source and Path(source).is_dir():
        keep_alive = HfDeepSpeedConfig(config)  # transformers loads under zero.Init while it lives
        ref = AutoModelForCausalLM.from_pretrained(source, config=copy.deepcopy(base.config), dtype=dtype)
        del keep_alive
    else:
        ref = copy.deepcopy(model)
    ref.requires_grad_(False)
    engine, *_ = deepspeed.initialize(model=ref, config=config)
    engine.eval()
    return engine


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

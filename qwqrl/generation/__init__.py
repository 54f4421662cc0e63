"""Rollout generation: the `Generator` contract and its HF and vLLM backends.

`make_generator("hf" | "vllm", model, tokenizer, **opts)` builds one from a recipe's choice.
Nothing here imports vLLM until a `VLLMGenerator` is constructed, so this package imports on
machines without it.
"""
from __future__ import annotations

from typing import Any

from qwqrl.generation.base import Generator, Rollout, SamplingParams

__all__ = ["Generator", "Rollout", "SamplingParams", "make_generator"]


def make_generator(kind: str, model: Any, tokenizer: Any, **opts: Any) -> Generator:
    """Build a generator.

    kind "hf": `HFGenerator(model, tokenizer, **opts)`, sharing the learner's module.
    kind "hf_copy": `CopiedHFGenerator(model, tokenizer, **opts)`, a private copy of it that
    `sync_weights` updates (asynchronous rollouts).
    kind "vllm": `VLLMGenerator(model, tokenizer, **opts)`; `model` is a checkpoint folder, or
    the learner (an HF or peft model, or a DeepSpeed engine around one), whose config the engine
    is built from and whose weights it receives at once and on every `sync_weights`.
    """
    if kind == "hf":
        from qwqrl.generation.hf import HFGenerator

        return HFGenerator(model, tokenizer, **opts)
    if kind == "hf_copy":
        from qwqrl.generation.hf import CopiedHFGenerator

        return CopiedHFGenerator(model, tokenizer, **opts)
    if kind == "vllm":
        from qwqrl.generation.vllm_backend import VLLMGenerator

        return VLLMGenerator(model, tokenizer, **opts)
    raise ValueError(f"unknown generator kind {kind!r}; expected 'hf', 'hf_copy' or 'vllm'")

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
    kind "vllm": `VLLMGenerator(model_path, tokenizer, **opts)`; `model` may be a path or the
    learner's HF model, whose `name_or_path` vLLM then loads (the architecture and the initial
    weights; later weights arrive through `sync_weights`).
    """
    if kind == "hf":
        from qwqrl.generation.hf import HFGenerator

        return HFGenerator(model, tokenizer, **opts)
    if kind == "vllm":
        from qwqrl.generation.vllm_backend import VLLMGenerator
        from qwqrl.generation.weights import unwrap_model

        path = model if isinstance(model, str) else unwrap_model(model).name_or_path
        return VLLMGenerator(path, tokenizer, **opts)
    raise ValueError(f"unknown generator kind {kind!r}; expected 'hf' or 'vllm'")

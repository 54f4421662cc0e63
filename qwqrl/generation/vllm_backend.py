"""Rollouts with vLLM colocated on the training GPUs (the recipe's setting for real runs).

Every training rank runs its own in-process vLLM engine (`distributed_executor_backend=
"external_launcher"`, as TRL's colocate mode does): with `tensor_parallel_size=k`, each group of
k consecutive ranks forms one engine, whose ranks must submit identical requests, so `generate`
all-gathers the group's prompts and each rank keeps its own slice of the results.

Memory: vLLM and the learner share each GPU. `sleep()` (vLLM sleep mode) frees the KV cache and
offloads (level 1) or discards (level 2) the weights before the learner's update; afterwards
`sync_weights` wakes only the weights and loads the learner's, and only then is the KV cache
reallocated (`wake_up`, or the next `generate`), so the gathered training weights and the KV
cache are never resident together. Level 2 skips the CPU copy of weights that the sync
overwrites anyway, but then `generate` refuses to run until `sync_weights` has been called.

Weights: `sync_weights` streams `iter_full_weights(model)` (ZeRO-3 gathered, LoRA merged, base
names) one tensor at a time into the engine's model with its own `load_weights` (which fuses
q/k/v and gate/up itself), then resets the prefix cache, whose blocks hold the old weights'
keys and values. Every rank must call it (ZeRO-3 gathering is collective). LoRA adapters are
merged and pushed as full weights; vLLM's own LoRA serving is not used.

Log-probs: `logprobs_mode="processed_logprobs"`: after temperature, top-k and top-p, the
convention in `qwqrl.generation.base`. Tokens are encoded here with the training tokenizer and
passed as ids, so prompt_ids are identical to the HF backend's and the learner's.
"""
from __future__ import annotations

import os
import socket
from typing import Any

import torch

from qwqrl.generation.base import Rollout, SamplingParams, encode_prompts
from qwqrl.generation.weights import iter_full_weights

INSTALL_HINT = "VLLMGenerator needs vLLM on a CUDA machine: pip install 'qwqrl[vllm]'"


def _import_vllm() -> Any:
    try:
        import vllm
    except ImportError as err:
        raise ImportError(INSTALL_HINT) from err
    return vllm


def _ensure_distributed_env() -> tuple[int, int]:
    """(rank, world size). The external launcher reads torch.distributed's env variables; a
    single process without a launcher gets rank 0 of 1 and a free local port."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
    else:
        rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    os.environ.setdefault("RANK", str(rank))
    os.environ.setdefault("WORLD_SIZE", str(world))
    os.environ.setdefault("LOCAL_RANK", str(rank % max(torch.cuda.device_count(), 1)))
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    if "MASTER_PORT" not in os.environ:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            os.environ["MASTER_PORT"] = str(s.getsockname()[1])
    return rank, world


class VLLMGenerator:
    """`Generator` on a colocated vLLM engine loaded from `model_path` (an HF checkpoint dir).

    seed: the engine's base seed; each tensor-parallel group adds its index, so data-parallel
    ranks sample differently. `SamplingParams.seed` additionally fixes each request's stream.
    llm_kwargs: passed to `vllm.LLM` (e.g. max_num_seqs, max_num_batched_tokens, enforce_eager).
    """

    def __init__(self, model_path: str, tokenizer: Any, *, tensor_parallel_size: int = 1,
                 gpu_memory_utilization: float = 0.5, enable_sleep_mode: bool = True,
                 sleep_level: int = 1, max_model_len: int | None = None, dtype: str = "bfloat16",
                 seed: int = 0, **llm_kwargs: Any) -> None:
        vllm = _import_vllm()
        if not torch.cuda.is_available():
            raise RuntimeError(f"VLLMGenerator needs a CUDA GPU. {INSTALL_HINT}")
        if sleep_level not in (1, 2):
            raise ValueError(f"sleep_level must be 1 (offload weights) or 2 (discard them), got {sleep_level}")
        rank, world = _ensure_distributed_env()
        if world % tensor_parallel_size:
            raise ValueError(f"tensor_parallel_size {tensor_parallel_size} must divide the world size {world}")
        self.tokenizer = tokenizer
        self.tp = tensor_parallel_size
        self.enable_sleep_mode = enable_sleep_mode
        self.sleep_level = sleep_level
        self._tp_group = None
        if tensor_parallel_size > 1:  # collective: every rank builds every group
            self._tp_group, _ = torch.distributed.new_subgroups_by_enumeration(
                [list(range(s, s + tensor_parallel_size)) for s in range(0, world, tensor_parallel_size)])
        self.llm = vllm.LLM(
            model=model_path, tensor_parallel_size=tensor_parallel_size,
            gpu_memory_utilization=gpu_memory_utilization, enable_sleep_mode=enable_sleep_mode,
            max_model_len=max_model_len, dtype=dtype, seed=seed + rank // tensor_parallel_size,
            distributed_executor_backend="external_launcher", logprobs_mode="processed_logprobs",
            **llm_kwargs,
        )
        self._asleep: list[str] = []  # tags still asleep, in wake-up order
        self._weights_discarded = False

    def generate(self, prompts: list[str], n: int, sampling: SamplingParams) -> list[Rollout]:
        vllm = _import_vllm()
        if self._weights_discarded:
            raise RuntimeError("vLLM discarded its weights in sleep(level=2); call sync_weights(model) first")
        self.wake_up()
        local_ids = encode_prompts(self.tokenizer, prompts)
        all_ids, offset = self._gather_tp(local_ids)
        params = [vllm.SamplingParams(
            n=n, temperature=sampling.temperature, top_p=sampling.top_p, top_k=sampling.top_k,
            max_tokens=sampling.max_new_tokens, stop=list(sampling.stop) or None, logprobs=0,
            # vLLM derives the k-th sample's seed as seed + k, so prompts are spaced n apart
            seed=None if sampling.seed is None else sampling.seed + i * n,
            detokenize=bool(sampling.stop),  # only stop strings need vLLM's text; ours is decoded below
        ) for i in range(len(all_ids))]
        outputs = self.llm.generate([{"prompt_token_ids": ids} for ids in all_ids], params, use_tqdm=False)
        mine = outputs[offset:offset + len(local_ids)]
        return [self._rollout(i, local_ids[i], completion) for i, out in enumerate(mine) for completion in out.outputs]

    def sync_weights(self, model: Any) -> None:
        if "weights" in self._asleep:
            torch.cuda.empty_cache()  # hand the learner's cached blocks back before vLLM maps its own
            self.llm.wake_up(tags=["weights"])
            self._asleep.remove("weights")
        engine_model = self.llm.llm_engine.model_executor.driver_worker.model_runner.model
        for name, tensor in iter_full_weights(model):
            engine_model.load_weights([(name, tensor)])
        self.llm.reset_prefix_cache()
        self._weights_discarded = False

    def sleep(self) -> None:
        if not self.enable_sleep_mode or self._asleep:
            return
        self.llm.sleep(level=self.sleep_level)
        self._asleep = ["weights", "kv_cache"]
        self._weights_discarded = self.sleep_level == 2

    def wake_up(self) -> None:
        if not self._asleep:
            return
        torch.cuda.empty_cache()
        for tag in list(self._asleep):  # weights first: the KV cache is sized around them
            self.llm.wake_up(tags=[tag])
            self._asleep.remove(tag)

    def _gather_tp(self, local: list[list[int]]) -> tuple[list[list[int]], int]:
        """All prompts of this rank's tensor-parallel group, and where this rank's start."""
        if self._tp_group is None:
            return local, 0
        gathered: list[Any] = [None] * self.tp
        torch.distributed.all_gather_object(gathered, local, group=self._tp_group)
        me = torch.distributed.get_rank(group=self._tp_group)
        return [ids for part in gathered for ids in part], sum(len(part) for part in gathered[:me])

    def _rollout(self, prompt_index: int, prompt_ids: list[int], completion: Any) -> Rollout:
        if completion.finish_reason not in ("stop", "length"):
            raise RuntimeError(f"vLLM finished a request with {completion.finish_reason!r}")
        token_ids = list(completion.token_ids)
        return Rollout(
            prompt_index=prompt_index, prompt_ids=prompt_ids, completion_ids=token_ids,
            logprobs=[position[token].logprob for position, token in zip(completion.logprobs, token_ids)],
            text=self.tokenizer.decode(token_ids, skip_special_tokens=True),
            finish_reason=completion.finish_reason,
        )

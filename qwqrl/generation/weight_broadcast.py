"""The process group that carries new weights from the learner to its rollout workers.

Rank 0 is the learner process that owns a `RemoteGenerator`; ranks 1..k are its rollout workers.
The group is built on its own rendezvous (a `TCPStore` the learner hosts) and never joins
torch.distributed's default group: the learner's ranks have their own world (torchrun, DeepSpeed)
and the workers are not part of it, just as vLLM's `StatelessProcessGroup` + `PyNcclCommunicator`
and OpenRLHF's `init_process_group` for vLLM engines keep the weight-update group apart from the
training world. Backend: NCCL when the learner's weights are on a GPU, gloo on CPU (tests, demo).

A sync is one broadcast per tensor from rank 0, in the learner's stream order; the name, shape
and dtype of each tensor travel first over the control channel (`qwqrl.generation.remote`), so
the stream can come straight from `iter_full_weights` (ZeRO-3 gathers one tensor at a time, whose
shapes are not known in advance). The workers receive into fresh buffers, not into the weights
they are generating with: a sync never waits for a generation to end (the cost is one spare copy
of the weights on the worker).
"""
from __future__ import annotations

from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

STORE_PREFIX = "qwqrl-weights"


def rendezvous_store(host: str, port: int, rank: int, world: int, timeout_s: float) -> Any:
    """The group's TCPStore: rank 0 hosts it (port 0 picks a free one, read back as `.port`),
    the workers connect to it, retrying until `timeout_s`."""
    return dist.TCPStore(host, port, world, is_master=rank == 0,
                         timeout=timedelta(seconds=timeout_s), wait_for_workers=False)


def weight_group(store: Any, host: str, rank: int, world: int, backend: str, timeout_s: float) -> Any:
    """The process group of the learner (rank 0) and `world - 1` workers over `store`; blocks
    until every rank has joined. `host`: the address this rank's gloo sockets listen on. Keep
    the store alive as long as the group."""
    timeout = timedelta(seconds=timeout_s)
    prefixed = dist.PrefixStore(STORE_PREFIX, store)
    if backend == "gloo":
        options = dist.ProcessGroupGloo._Options()
        options._timeout = timeout
        options._devices = [dist.ProcessGroupGloo.create_device(hostname=host)]
        return dist.ProcessGroupGloo(prefixed, rank, world, options)
    if backend == "nccl":
        options = dist.ProcessGroupNCCL.Options()
        options._timeout = timeout
        return dist.ProcessGroupNCCL(prefixed, rank, world, options)
    raise ValueError(f"weight broadcast backend must be 'gloo' or 'nccl', got {backend!r}")


def backend_for(device: torch.device) -> str:
    """NCCL for CUDA tensors, gloo otherwise."""
    return "nccl" if device.type == "cuda" else "gloo"


def broadcast(group: Any, tensor: torch.Tensor) -> None:
    """Broadcast `tensor` from rank 0 into every rank's `tensor`, in place, and wait."""
    group.broadcast(tensor, 0).wait()


def empty_like_spec(shape: tuple[int, ...], dtype: str, device: torch.device) -> torch.Tensor:
    """A receive buffer for a tensor announced as (shape, dtype name without `torch.`)."""
    return torch.empty(shape, dtype=getattr(torch, dtype), device=device)


def dtype_name(tensor: torch.Tensor) -> str:
    """The dtype as `empty_like_spec` reads it back ("float32", "bfloat16")."""
    return str(tensor.dtype).removeprefix("torch.")

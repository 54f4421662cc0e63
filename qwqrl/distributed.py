"""Process-group setup shared by every entry point.

torchrun, the `deepspeed` launcher and `accelerate launch` all export RANK/WORLD_SIZE/LOCAL_RANK;
a plain `qwqrl train` gets a one-process group on a free loopback port. DeepSpeed needs a process
group even for one process, and on CPU (gloo) it must exist before the model is built.
$QWQRL_DIST_TIMEOUT_S bounds how long a collective waits for a peer (default: torch's 30 minutes):
a launcher that must not hang when a node dies (launch/local-cluster.sh) sets it lower.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any
from datetime import timedelta

import torch

from qwqrl.sandbox.local import free_port


@dataclass(frozen=True)
class Dist:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed() -> Dist:
    """Join (or create) the process group and pick this process's device."""
    import deepspeed

    if "RANK" not in os.environ:
        os.environ.update(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1",
                          MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    if not torch.distributed.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        timeout = os.environ.get("QWQRL_DIST_TIMEOUT_S")
        if timeout:
            deepspeed.init_distributed(dist_backend=backend, timeout=timedelta(seconds=float(timeout)))
        else:
            deepspeed.init_distributed(dist_backend=backend)
    return Dist(rank=torch.distributed.get_rank(), world_size=torch.distributed.get_world_size(),
                local_rank=local_rank, device=device)


def forget_stale_deepspeed_groups() -> None:
    """Drop DeepSpeed's cached process groups when the world they belong to is gone.

    DeepSpeed keeps a clone of the world group (and others) at module level and reuses it at the
    next `deepspeed.initialize`. A process group destroyed by anyone but DeepSpeed leaves that
    cache pointing at a dead group: vLLM's in-process engine tears down the group it joined when
    it shuts down, and the next Learner then failed with "Group ... is not registered". Called
    before each engine is built."""
    from deepspeed.utils import groups

    world = getattr(groups, "_WORLD_GROUP", None)
    if world is None:
        return
    c10d = torch.distributed.distributed_c10d
    if torch.distributed.is_initialized() and world in c10d._world.pg_group_ranks:
        return
    release = getattr(groups, "_release_process_group_references", None)
    if release is not None:  # DeepSpeed >= 0.19 clears every cache it keeps
        release(None)
    else:
        groups._WORLD_GROUP = groups._DATA_PARALLEL_GROUP = None


def shutdown() -> None:
    """Leave the process group before the interpreter exits. Left to interpreter teardown, gloo's
    threads are destroyed while still joinable and a rank can abort ("terminate called without
    an active exception", exit -6) after its work is done, failing the whole launch."""
    if torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


def barrier() -> None:
    if torch.distributed.is_initialized():
        torch.distributed.barrier()


def all_reduce_mean(values: dict[str, float]) -> dict[str, float]:
    """Average scalar metrics over ranks so the logged numbers describe the whole batch.

    Ranks may report different keys (a rank whose prompts hold no code has no code reward): each
    key is averaged over the ranks that report it, and counts of masked samples (`*/errors`)
    are summed, so one all-reduce never pairs one rank's metric with another's."""
    if not torch.distributed.is_initialized() or torch.distributed.get_world_size() == 1:
        return values
    reported: list[Any] = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(reported, sorted(values))
    keys = sorted(set().union(*reported))
    t = torch.tensor([[float(values.get(k, 0.0)), float(k in values)] for k in keys],
                     dtype=torch.float64)
    if torch.distributed.get_backend() == "nccl":
        t = t.cuda()
    torch.distributed.all_reduce(t)
    total, ranks = t.cpu().unbind(1)
    return {k: float(total[i]) if k.endswith("/errors") else float(total[i] / ranks[i])
            for i, k in enumerate(keys)}

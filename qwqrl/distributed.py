"""Process-group setup shared by every entry point.

torchrun, the `deepspeed` launcher and `accelerate launch` all export RANK/WORLD_SIZE/LOCAL_RANK;
a plain `qwqrl train` gets a one-process group on a free loopback port. DeepSpeed needs a process
group even for one process, and on CPU (gloo) it must exist before the model is built.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

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
        deepspeed.init_distributed(dist_backend="nccl" if device.type == "cuda" else "gloo")
    return Dist(rank=torch.distributed.get_rank(), world_size=torch.distributed.get_world_size(),
                local_rank=local_rank, device=device)


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
    """Average scalar metrics over ranks so the logged numbers describe the whole batch."""
    if not torch.distributed.is_initialized() or torch.distributed.get_world_size() == 1:
        return values
    keys = sorted(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64)
    if torch.distributed.get_backend() == "nccl":
        t = t.cuda()
    torch.distributed.all_reduce(t)
    t /= torch.distributed.get_world_size()
    return dict(zip(keys, t.cpu().tolist()))

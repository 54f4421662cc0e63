"""Step metrics averaged over ranks that report different keys: with one prompt per rank, one
rank may judge code and the other math, and only one may have masked samples. Two real gloo
processes (no launcher: torch.multiprocessing on a loopback port)."""
from __future__ import annotations

import os

import torch
import torch.multiprocessing as mp

from qwqrl.sandbox.local import free_port

RANK_METRICS = [{"loss": 1.0, "rewards/code/mean": 0.5, "rewards/code/errors": 3.0},
                {"loss": 3.0, "rewards/math/mean": 1.0}]


def worker(rank: int, port: int, out: dict) -> None:
    from qwqrl.distributed import all_reduce_mean

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.distributed.init_process_group("gloo", rank=rank, world_size=2)
    try:
        out[rank] = all_reduce_mean(RANK_METRICS[rank])
    finally:
        torch.distributed.destroy_process_group()


def test_each_key_is_averaged_over_the_ranks_that_report_it_and_errors_are_summed() -> None:
    with mp.Manager() as manager:
        out = manager.dict()
        mp.spawn(worker, args=(free_port(), out), nprocs=2)
        results = [dict(out[0]), dict(out[1])]
    expected = {"loss": 2.0, "rewards/code/mean": 0.5, "rewards/math/mean": 1.0,
                "rewards/code/errors": 3.0}
    assert results == [expected, expected]

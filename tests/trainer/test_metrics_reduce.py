"""What ranks must agree on each step, though their batches differ: metrics whose keys differ
(with one prompt per rank, one rank may judge code and the other math, and only one may have
masked samples), and whether to skip an update because one rank has no sample left. Two real
gloo processes (no launcher: torch.multiprocessing on a loopback port)."""
from __future__ import annotations

import os

import torch
import torch.multiprocessing as mp

from qwqrl.sandbox.local import free_port

RANK_METRICS = [{"loss": 1.0, "rewards/code/mean": 0.5, "rewards/code/errors": 3.0},
                {"loss": 3.0, "rewards/math/mean": 1.0}]


def worker(rank: int, port: int, out: dict) -> None:
    from qwqrl.distributed import all_reduce_mean
    from qwqrl.policy_update import all_ranks_have

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.distributed.init_process_group("gloo", rank=rank, world_size=2)
    try:
        out[rank] = all_reduce_mean(RANK_METRICS[rank])
        out[f"skip{rank}"] = (all_ranks_have(rank == 0), all_ranks_have(True))
    finally:
        torch.distributed.destroy_process_group()


def test_ranks_agree_on_metrics_with_different_keys_and_on_skipping_an_empty_update() -> None:
    with mp.Manager() as manager:
        out = manager.dict()
        mp.spawn(worker, args=(free_port(), out), nprocs=2)
        results = [dict(out[0]), dict(out[1])]
        skips = [out["skip0"], out["skip1"]]
    expected = {"loss": 2.0, "rewards/code/mean": 0.5, "rewards/math/mean": 1.0,
                "rewards/code/errors": 3.0}
    assert results == [expected, expected]
    # rank 1 has no sample: neither rank steps (rank 0 alone would wait for rank 1's gradients)
    assert skips == [(False, True), (False, True)]

"""The cold start shards: 2 ranks (gloo on CPU) under ZeRO-3 train with the same per-step loss as
1 rank on the same global batch, and each rank holds about half of the parameters."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.trainer.test_distributed import torchrun


def test_sft_under_zero3_on_two_ranks_matches_one_rank(tmp_path: Path) -> None:
    torchrun(1, tmp_path, worker="sft_dp_worker.py")
    torchrun(2, tmp_path, worker="sft_dp_worker.py")
    one = json.loads((tmp_path / "world1.json").read_text())
    two = json.loads((tmp_path / "world2.json").read_text())
    assert len(one["losses"]) == len(two["losses"]) == 4
    assert two["losses"] == pytest.approx(one["losses"], rel=1e-4)
    assert one["losses"][-1] < one["losses"][0] - 0.1, "the steps should lower the loss"
    assert one["shares"] == pytest.approx([1.0])
    assert two["shares"] == pytest.approx([0.5, 0.5], abs=0.02)

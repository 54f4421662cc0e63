"""Weight sync across processes: 2 ranks under torchrun (gloo), ZeRO 0 and 3, with two engines
(tensor parallel 1) and with one engine split across both ranks (tensor parallel 2). What each
rank checks is in vllm_ranks.py."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .vllm_support import require_vllm

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.vllm
@pytest.mark.parametrize("tp", [1, 2], ids=["tp1-two-engines", "tp2-one-engine"])
def test_sync_after_deepspeed_updates_on_two_ranks(tp: int) -> None:
    require_vllm()
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    env["PYTHONPATH"] = str(ROOT)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(ROOT / "tests" / "generation" / "vllm_ranks.py"), str(tp)]
    proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-6000:])
    for rank in (0, 1):
        assert f"rank {rank} ok" in proc.stdout
        for zero in (0, 3):
            assert f"rank {rank} zero {zero} tp {tp}" in proc.stdout

"""`torchrun --nproc_per_node 2 -m qwqrl eval`: each rank samples its share of the problems and
rank 0 writes all of them, the same completions one process makes (greedy, one prompt per
batch so padding cannot differ)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from qwqrl.cli import main
from qwqrl.tiny import build_model, build_tokenizer

ROOT = Path(__file__).resolve().parents[2]
ARGS = ["--suite", "tiny-math", "--backend", "hf", "--temperature", "0", "--samples", "1",
        "--limit", "5", "--max-new-tokens", "8", "--batch-size", "1", "--no-instructions"]


def completions(out: Path) -> list[tuple[str, int, str]]:
    lines = [json.loads(x) for x in (out / "samples.jsonl").read_text().splitlines()]
    return [(x["id"], x["sample"], x["completion"]) for x in lines]


def test_two_ranks_write_what_one_process_writes(tmp_path: Path) -> None:
    tok = build_tokenizer()
    ckpt = tmp_path / "ckpt"
    build_model(tok, seed=3).save_pretrained(ckpt)
    tok.save_pretrained(ckpt)
    assert main(["eval", str(ckpt), *ARGS, "-o", str(tmp_path / "one")]) == 0

    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    env.update(PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "qwqrl", "eval", str(ckpt), *ARGS, "-o", str(tmp_path / "two")]
    proc = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert proc.stdout.count("tiny math") == 2  # avg@1 and pass@1, from rank 0 only

    one, two = completions(tmp_path / "one"), completions(tmp_path / "two")
    assert len(one) == 5 and two == one
    settings = json.loads((tmp_path / "two" / "eval.json").read_text())["settings"]
    assert settings["data_parallel"] == 2

"""`generation.placement: remote` in a whole run: `qwqrl train` with a spawned rollout worker and
one-step-off rollouts trains every step, no batch older than the bound, and leaves no worker
behind; a placement that does not fit its workers is refused naming the key."""
from __future__ import annotations

import json
import multiprocessing

import pytest

from qwqrl.cli import main
from qwqrl.recipe import load_recipe
from tests.trainer.conftest import rl_recipe, write


def test_one_step_off_run_with_a_rollout_worker(tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    recipe = rl_recipe(tmp_path, steps=3, off_policy={"max_staleness": 1})
    recipe["stages"][0]["generation"].update(placement="remote", remote={"workers": 1, "timeout_s": 120})
    assert main(["train", str(write(tmp_path, recipe))]) == 0
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if "timing/step_s" in r]
    assert len(steps) == 3
    assert all(r["async/staleness_max"] <= 1 and r["async/dropped_stale"] == 0 for r in steps)
    assert any(r["async/staleness_max"] == 1 for r in steps), "no step was generated ahead"
    assert multiprocessing.active_children() == []


def test_cpus_must_name_one_list_per_worker(tmp_path):
    recipe = rl_recipe(tmp_path)
    recipe["stages"][0]["generation"].update(placement="remote", remote={"workers": 2, "cpus": [[1]]})
    with pytest.raises(Exception, match=r"(?s)generation.remote.*cpus has 1 lists for 2 workers"):
        load_recipe(write(tmp_path, recipe), [])


def test_a_remote_vllm_engine_is_one_gpu_per_worker(tmp_path):
    recipe = rl_recipe(tmp_path)
    recipe["stages"][0]["generation"].update(backend="vllm", placement="remote",
                                             vllm={"tensor_parallel_size": 2})
    with pytest.raises(Exception, match=r"(?s)generation.*tensor_parallel_size must be 1"):
        load_recipe(write(tmp_path, recipe), [])

"""Rollout workers in their own processes (`RemoteGenerator`, HF engine; the vLLM engine is in
test_remote_vllm.py): after a real DeepSpeed update and `sync_weights`, a worker samples with the
learner's new weights (its log-probs equal `completion_logprobs` of the learner), every rollout
names the weights version that made it, and no worker outlives its learner or hangs it."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from qwqrl.config import TrainerConfig
from qwqrl.distributed import init_distributed
from qwqrl.generation import SamplingParams
from qwqrl.generation.remote import RemoteGenerator, RemoteSettings, RemoteWorkerError
from qwqrl.generation.remote_worker import AUTHKEY_ENV, Placement
from qwqrl.learner import Learner
from qwqrl.sequences import completion_logprobs, pack
from qwqrl.tiny import build_model
from tests.generation.vllm_support import ATOL, max_logprob_error
from tests.trainer.conftest import SMALL

SAMPLING = SamplingParams(max_new_tokens=10, temperature=1.0, top_k=0, top_p=1.0, seed=0)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def one_thread(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # inherited by the spawned workers


def gone(pid: int) -> bool:
    """True when no live process has this pid (a zombie awaiting its reaper counts as gone)."""
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split()[0] in ("Z", "X")
    except (FileNotFoundError, IndexError):
        return True


def wait_gone(pids: list[int], within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if all(gone(p) for p in pids):
            return True
        time.sleep(0.2)
    return False


def reinforce_step(learner: Learner, rollouts: list) -> None:
    """One optimizer step of a REINFORCE-style loss with fixed signs: a real DeepSpeed update."""
    batch = pack([r.prompt_ids for r in rollouts], [r.completion_ids for r in rollouts], pad_id=0,
                 device=torch.device("cpu"))
    lp, _ = completion_logprobs(learner.engine, batch, SAMPLING.temperature)
    signs = torch.tensor([1.0 if i % 2 else -1.0 for i in range(len(rollouts))])[:, None]
    learner.backward(-(lp * signs * batch.completion_mask).sum() / batch.completion_mask.sum(), last=True)
    learner.step()


def test_worker_samples_with_the_learners_weights_after_an_update(tok, prompts):
    init_distributed()
    learner = Learner(build_model(tok, seed=0, **SMALL), TrainerConfig(lr=3e-2, max_steps=1), total_steps=1)
    settings = RemoteSettings(workers=2, placements=[Placement(cpus=[0]), Placement(cpus=[0])], timeout_s=120)
    with RemoteGenerator(learner.engine, tok, settings) as remote:
        three = [*prompts, prompts[0]]  # 3 prompts over 2 workers: shares of 2 and 1
        groups = list(remote.generate_stream(three, 2, SAMPLING))
        assert sorted(g[0].prompt_index for g in groups) == [0, 1, 2]
        assert all(len(g) == 2 and {r.prompt_index for r in g} == {g[0].prompt_index} for g in groups)
        rollouts = [r for g in sorted(groups, key=lambda g: g[0].prompt_index) for r in g]
        assert {r.policy_version for r in rollouts} == {0}
        assert max_logprob_error(learner.module, rollouts, SAMPLING) < ATOL

        reinforce_step(learner, rollouts)
        stale = max_logprob_error(learner.module, rollouts, SAMPLING)
        assert stale > 1e-2, f"the update changed nothing ({stale})"
        remote.sync_weights(learner.engine)
        fresh = remote.generate(three, 2, SAMPLING)
        assert [r.prompt_index for r in fresh] == [0, 0, 1, 1, 2, 2]
        assert {r.policy_version for r in fresh} == {1}
        assert max_logprob_error(learner.module, fresh, SAMPLING) < ATOL

        remote.sync_weights(learner.engine, version=7)  # the caller may number versions itself
        assert {r.policy_version for r in remote.generate(prompts, 1, SAMPLING)} == {7}
        pids = [p.pid for p in remote.processes]
    assert all(p.exitcode == 0 for p in remote.processes)
    assert wait_gone(pids, 5)


def test_a_sync_during_a_generation_neither_waits_for_it_nor_changes_it(tok, prompts):
    """The broadcast lands while the worker generates; the request under way finishes on the
    weights it started with, and the next one uses the new ones."""
    old, new = build_model(tok, seed=0, **SMALL), build_model(tok, seed=1, **SMALL)
    long = SamplingParams(max_new_tokens=64, temperature=1.0, top_k=0, top_p=1.0, seed=0)
    with RemoteGenerator(old, tok, RemoteSettings(timeout_s=120, options={"batch_size": 2})) as remote:
        stream = remote.generate_stream(prompts * 4, 2, long)  # 8 generate calls in the worker
        under_way = [next(stream)]
        remote.sync_weights(new)
        under_way += list(stream)
        assert len(under_way) == 8 and {r.policy_version for g in under_way for r in g} == {0}
        assert max_logprob_error(old, [r for g in under_way for r in g], long) < ATOL
        after = remote.generate(prompts, 2, SAMPLING)
        assert {r.policy_version for r in after} == {1}
        assert max_logprob_error(new, after, SAMPLING) < ATOL


def test_a_killed_worker_is_an_error_not_a_hang(tok, prompts):
    remote = RemoteGenerator(build_model(tok, seed=0, **SMALL), tok, RemoteSettings(timeout_s=120))
    try:
        os.kill(remote.processes[0].pid, signal.SIGKILL)
        with pytest.raises(RemoteWorkerError, match=r"rollout worker 0 \(exit status -9\)"):
            remote.generate(prompts, 2, SAMPLING)
    finally:
        remote.close()
    assert wait_gone([p.pid for p in remote.processes], 5)


def test_an_engine_error_comes_back_with_the_workers_traceback(tok, prompts):
    with RemoteGenerator(build_model(tok, seed=0, **SMALL), tok, RemoteSettings(timeout_s=120)) as remote:
        with pytest.raises(RemoteWorkerError, match=r"(?s)rollout worker 0.*it raised:.*Traceback"):
            remote.generate([12345], 1, SAMPLING)  # not a string: the worker's tokenizer refuses it
        with pytest.raises(RemoteWorkerError, match="rollout worker 0"):
            remote.sync_weights(build_model(tok, seed=1, **SMALL))


LEARNER = """
import sys, time
from qwqrl.generation.remote import RemoteGenerator, RemoteSettings
from qwqrl.tiny import build_model, build_tokenizer
if __name__ == "__main__":
    tok = build_tokenizer()
    remote = RemoteGenerator(build_model(tok, seed=0, hidden_size=64, num_hidden_layers=1,
                             num_attention_heads=4, intermediate_size=64), tok, RemoteSettings(timeout_s=120))
    print(remote.processes[0].pid, flush=True)
    time.sleep(600)
"""


def test_a_worker_exits_when_its_learner_is_killed(tmp_path):
    script = tmp_path / "learner.py"
    script.write_text(LEARNER)
    learner = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True,
                               cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        worker_pid = int(learner.stdout.readline())
        assert not gone(worker_pid)
        learner.kill()  # SIGKILL: no atexit, no close()
        learner.wait()
        assert wait_gone([worker_pid], 20), "the worker outlived its killed learner"
    finally:
        learner.kill()
        learner.wait()


def test_workers_started_by_the_launch_script_dial_the_learner(tok, prompts):
    """launch/rollout_workers.sh under real torchrun: two ranks become workers 0 and 1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK",
                                                          "MASTER_ADDR", "MASTER_PORT")}
    env.update({AUTHKEY_ENV: "test-secret", "WORKERS": "2", "GPUS_PER_WORKER": "0",
                "PATH": f"{Path(sys.executable).parent}:{env['PATH']}", "OMP_NUM_THREADS": "1"})
    workers = subprocess.Popen([str(ROOT / "launch" / "rollout_workers.sh"), f"127.0.0.1:{port}"],
                               cwd=ROOT, env=env, start_new_session=True)
    try:
        model = build_model(tok, seed=0, **SMALL)
        settings = RemoteSettings(workers=2, launch="external", port=port, timeout_s=120)
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv(AUTHKEY_ENV, "test-secret")
            remote = RemoteGenerator(model, tok, settings)
        with remote:
            rollouts = remote.generate([*prompts, prompts[0]], 2, SAMPLING)
            assert [r.prompt_index for r in rollouts] == [0, 0, 1, 1, 2, 2]
            assert max_logprob_error(model, rollouts, SAMPLING) < ATOL
        assert workers.wait(timeout=30) == 0
    finally:
        if workers.poll() is None:
            os.killpg(workers.pid, signal.SIGKILL)
            workers.wait()

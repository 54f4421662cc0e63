"""A vLLM rollout worker in its own process (`RemoteGenerator`, engine "vllm"): after a real
DeepSpeed update and a weight broadcast, the worker's engine samples with the learner's new
weights (vLLM's in-place reload in the worker), its log-probs equal the learner's, and the
worker stops cleanly."""
from __future__ import annotations

import pytest

from qwqrl.config import TrainerConfig
from qwqrl.distributed import init_distributed
from qwqrl.generation.remote import RemoteGenerator, RemoteSettings
from qwqrl.learner import Learner
from qwqrl.tiny import build_model
from tests.generation.test_remote import SAMPLING, reinforce_step, wait_gone

from .vllm_support import ATOL, VLLM_SMALL, max_logprob_error, require_vllm


@pytest.mark.vllm
def test_vllm_worker_samples_with_the_learners_weights_after_an_update(tok, prompts, monkeypatch):
    require_vllm()
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    init_distributed()
    learner = Learner(build_model(tok, seed=0, **VLLM_SMALL), TrainerConfig(lr=3e-2, max_steps=1), total_steps=1)
    settings = RemoteSettings(engine="vllm", timeout_s=300,
                              options={"max_model_len": 256, "enable_sleep_mode": False, "enforce_eager": True})
    with RemoteGenerator(learner.engine, tok, settings) as remote:
        rollouts = remote.generate(prompts, 2, SAMPLING)
        assert [r.prompt_index for r in rollouts] == [0, 0, 1, 1]
        assert max_logprob_error(learner.module, rollouts, SAMPLING) < ATOL

        reinforce_step(learner, rollouts)
        stale = max_logprob_error(learner.module, rollouts, SAMPLING)
        assert stale > 1e-2, f"the update changed nothing ({stale})"
        remote.sync_weights(learner.engine)
        fresh = remote.generate(prompts, 2, SAMPLING)
        assert {r.policy_version for r in fresh} == {1}
        assert max_logprob_error(learner.module, fresh, SAMPLING) < ATOL
        pids = [p.pid for p in remote.processes]
    assert [p.exitcode for p in remote.processes] == [0]
    assert wait_gone(pids, 5)

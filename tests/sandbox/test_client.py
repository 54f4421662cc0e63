"""The client against real replicas: load without loss, a replica killed mid-load, dead replicas
ejected, bad requests returned as SE results (never raised), and the sync wrapper."""
from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from qwqrl.sandbox.client import SandboxClient
from qwqrl.sandbox.local import LocalSandbox, free_port

from .conftest import Server

ECHO_TESTS = {"type": "stdio", "cases": [{"input": "7\n", "output": "7\n"}]}


def request(i: int) -> tuple[dict, str]:
    """A trivial evaluation with a known verdict: every seventh is wrong, every eleventh crashes."""
    if i % 11 == 0:
        return {"code": "raise SystemExit(4)", "tests": ECHO_TESTS}, "RE"
    if i % 7 == 0:
        return {"code": "print(int(input()) + 1)", "tests": ECHO_TESTS}, "WA"
    return {"code": "print(input())", "tests": ECHO_TESTS}, "OK"


async def run_load(client: SandboxClient, n: int, concurrency: int,
                   on_progress: "callable | None" = None) -> list[dict]:
    gate = asyncio.Semaphore(concurrency)
    done = 0

    async def one(i: int) -> dict:
        nonlocal done
        async with gate:
            result = await client.evaluate(request(i)[0])
        done += 1
        if on_progress:
            on_progress(done)
        return result

    try:
        return list(await asyncio.gather(*(one(i) for i in range(n))))
    finally:
        await client.aclose()


def test_two_thousand_evaluations_at_32_concurrent_none_lost(server: Server) -> None:
    results = asyncio.run(run_load(SandboxClient([server.url]), 2000, 32))
    assert len(results) == 2000
    assert [r["status"] for r in results] == [request(i)[1] for i in range(2000)]
    assert all(r["reward"] == (1.0 if r["status"] == "OK" else 0.0) for r in results)
    server.assert_clean_and_healthy()


def test_a_replica_killed_mid_load_loses_no_request() -> None:
    with LocalSandbox(workers=1) as first, LocalSandbox(workers=1) as second:
        assert first.proc is not None
        victim = first.proc.pid

        def kill_at(done: int) -> None:
            if done == 60:
                os.kill(victim, signal.SIGKILL)

        client = SandboxClient([first.url, second.url], timeout_s=30)
        results = asyncio.run(run_load(client, 400, 16, kill_at))
        assert first.proc.poll() is not None, "the first replica should have been killed"
    assert [r["status"] for r in results] == [request(i)[1] for i in range(400)]


def test_dead_replicas_are_ejected_and_skipped(server: Server) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    client = SandboxClient([dead, server.url], timeout_s=30)
    results = client.evaluate_many([request(i)[0] for i in range(1, 41)])
    assert [r["status"] for r in results] == [request(i)[1] for i in range(1, 41)]
    assert client.replicas[0].ejected_until > 0 and client.replicas[1].ejected_until == 0


def test_with_every_replica_down_the_result_is_se_not_an_exception() -> None:
    client = SandboxClient([f"http://127.0.0.1:{free_port()}"], timeout_s=5, max_retries=2)
    (result,) = client.evaluate_many([request(1)[0]])
    assert result["status"] == "SE" and result["reward"] is None and "gave up" in result["error"]


def test_a_malformed_request_is_an_se_result_naming_the_field(server: Server) -> None:
    client = SandboxClient([server.url])
    bad = {"code": "print(1)", "tests": {"type": "stdio", "cases": [{"input": ""}]}}
    good, broken = client.evaluate_many([request(1)[0], bad])
    assert good["status"] == "OK"
    assert broken["status"] == "SE" and "output" in broken["error"] and "422" in broken["error"]


def test_evaluate_many_works_from_a_worker_thread(server: Server) -> None:
    client = SandboxClient([server.url])
    out: list[list[dict]] = []
    worker = threading.Thread(target=lambda: out.append(client.evaluate_many([request(i)[0] for i in (1, 7)])))
    worker.start()
    worker.join(60)
    assert [r["status"] for r in out[0]] == ["OK", "WA"]


def test_one_client_serves_several_threads_at_once(server: Server) -> None:
    """The trainer scores each finished group in a thread pool with one shared client: every
    thread's `evaluate_many` (an event loop each) must finish, none waiting on a connection of
    another thread's loop or on a client another thread closed."""
    client = SandboxClient([server.url], timeout_s=60)
    batches = [[request(i)[0] for i in range(t, t + 3)] for t in range(0, 60, 3)]
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=4) as pool:  # a thread's client closes as others send
        results = list(pool.map(client.evaluate_many, batches * 4))
    assert time.monotonic() - started < 45, "a request waited for its timeout"
    assert [r["status"] for out in results for r in out] == [request(i)[1] for i in range(60)] * 4


def test_from_env_reads_comma_separated_replicas(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QWQRL_SANDBOX_URL", "http://127.0.0.1:1/, http://127.0.0.1:2")
    assert [r.url for r in SandboxClient.from_env().replicas] == ["http://127.0.0.1:1", "http://127.0.0.1:2"]
    monkeypatch.delenv("QWQRL_SANDBOX_URL")
    with pytest.raises(ValueError, match="QWQRL_SANDBOX_URL"):
        SandboxClient.from_env()


def code_record(i: int) -> dict:
    """A code sample as the trainer scores it: the answer after `</think>` holds the program."""
    body, _ = request(i)
    return {"task": "code", "tests": body["tests"], "completion_ids": [],
            "completion": f"x</think>\n```python\n{body['code']}\n```"}


def test_a_killed_replica_scores_nothing_zero_and_is_used_again_once_restarted() -> None:
    """What a sandbox node lost mid-step means to the trainer (the cluster rehearsal's fault):
    its samples are judged on the other replica, none is scored 0 for it, and once a replica
    is back on its address the client gives it work again."""
    from qwqrl.config import RewardsConfig
    from qwqrl.rewards import RewardRouter

    with LocalSandbox(workers=1, port=free_port()) as first, LocalSandbox(workers=1) as second:
        client = SandboxClient([first.url, second.url], timeout_s=30, eject_s=0.5)
        router = RewardRouter.from_config(RewardsConfig(code={"weight": 1.0}), 64,
                                          sandbox_client=client)
        records = [code_record(i) for i in range(1, 41)]
        expected = [1.0 if request(i)[1] == "OK" else 0.0 for i in range(1, 41)]
        assert router.score(records).rewards == expected
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait()
        scored = router.score(records)
        assert scored.rewards == expected and not scored.errors
        assert client.replicas[0].ejected_until > 0, "the dead replica was never tried"

        first.proc = None
        first.start()  # same port: the fleet restarts a lost node where it was
        requests = 0.0
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not requests:
            assert router.score(records).rewards == expected
            requests = evaluated(first.url)
        assert requests > 0, "the restarted replica was never given work again"

        first.stop()
        second.stop()  # the whole fleet down: masked (None) and counted, never 0
        scored = RewardRouter.from_config(
            RewardsConfig(code={"weight": 1.0}), 64,
            sandbox_client=SandboxClient([first.url, second.url], timeout_s=5, max_retries=2,
                                         eject_s=0.5)).score(records[:3])
        assert scored.rewards == [None, None, None] and scored.errors == {"code": 3}


def evaluated(url: str) -> float:
    """The replica's count of /v1/evaluate requests (its Prometheus counter)."""
    import httpx

    for line in httpx.get(f"{url}/metrics", trust_env=False).text.splitlines():
        if line.startswith('qwqrl_sandbox_requests_total{endpoint="evaluate"}'):
            return float(line.split()[1])
    return 0.0

"""The client against real replicas: load without loss, a replica killed mid-load, dead replicas
ejected, bad requests returned as SE results (never raised), and the sync wrapper."""
from __future__ import annotations

import asyncio
import os
import signal
import threading

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


def test_from_env_reads_comma_separated_replicas(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QWQRL_SANDBOX_URL", "http://127.0.0.1:1/, http://127.0.0.1:2")
    assert [r.url for r in SandboxClient.from_env().replicas] == ["http://127.0.0.1:1", "http://127.0.0.1:2"]
    monkeypatch.delenv("QWQRL_SANDBOX_URL")
    with pytest.raises(ValueError, match="QWQRL_SANDBOX_URL"):
        SandboxClient.from_env()

"""The math verifier never hangs and never crashes its caller: hard limits, dead workers,
threads and event loops."""
from __future__ import annotations

import asyncio
import os
import signal
import threading
import time

import pytest

from qwqrl.verifiers.math import averify_batch, pool, verify_batch
from qwqrl.verifiers.pool import DeadlinePool

LIMIT_S = 1.5


def done(answer: str) -> str:
    return "reasoning\n</think>\n" + answer


@pytest.fixture
def eval_pool():
    """A pool whose tasks are Python expressions, to make workers sleep, fail or die at will."""
    with DeadlinePool("builtins:eval", processes=2) as p:
        yield p


PATHOLOGICAL = [
    "$\\boxed{9^{9^{9^9}}}$",
    "$\\boxed{100000!}$",
    "$\\boxed{" + "(" * 3000 + "4" + ")" * 3000 + "}$",
    "$\\boxed{" + "{" * 3000 + "4" + "}" * 3000 + "}$",
    "$\\boxed{" + "+".join(["x"] * 3000) + "}$",
    "The answer is $9^{9^{9^{9}}}$",
]


def test_pathological_answers_score_zero_within_the_limit():
    records = [{"answer": "4", "completion": done(a)} for a in PATHOLOGICAL]
    start = time.monotonic()
    verdicts = verify_batch(records, timeout_s=LIMIT_S)
    elapsed = time.monotonic() - start
    assert [v.score for v in verdicts] == [0.0] * len(PATHOLOGICAL)
    # Six records on two workers: at most three limits in a row, plus a worker restart.
    assert elapsed < 3 * LIMIT_S + 5, elapsed
    assert any(v.detail.get("reason") == "timeout" for v in verdicts)


def test_a_task_over_its_limit_is_killed_its_worker_replaced_and_the_rest_still_run(eval_pool):
    start = time.monotonic()
    outcomes = eval_pool.map(["1 + 1", "__import__('time').sleep(60)", "2 + 2", "3 + 3"],
                             timeout_s=1.0)
    assert time.monotonic() - start < 10
    assert [o.value for o in outcomes] == [2, None, 4, 6]
    assert outcomes[1].timed_out and 1.0 <= outcomes[1].seconds < 3.0
    assert eval_pool.stats.timeouts == 1 and eval_pool.stats.restarts == 1


def test_a_worker_that_dies_is_replaced_and_its_task_gets_an_error_not_a_value(eval_pool):
    outcomes = eval_pool.map(["__import__('os')._exit(3)", "5 * 5"], timeout_s=5.0)
    assert outcomes[0].error is not None and "died" in outcomes[0].error
    assert outcomes[1].value == 25
    assert eval_pool.stats.crashes == 1


def test_an_exception_in_a_task_is_reported_as_its_error(eval_pool):
    (outcome,) = eval_pool.map(["1 / 0"], timeout_s=5.0)
    assert outcome.value is None and outcome.error.startswith("ZeroDivisionError")


def test_a_worker_killed_from_outside_is_replaced_and_the_batch_completes():
    slow = {"answer": "4", "completion": done("$\\boxed{9^{9^{9^9}}}$")}
    fine = {"answer": "\\frac{1}{2}", "completion": done("$\\boxed{0.5}$")}
    p = pool()
    result: list = []
    caller = threading.Thread(target=lambda: result.extend(
        verify_batch([slow, fine, fine], timeout_s=60.0)))
    caller.start()
    deadline = time.monotonic() + 30
    while not any(s > 0.5 for s in p.busy().values()) and time.monotonic() < deadline:
        time.sleep(0.05)  # until a worker is stuck on the tower of exponents
    (stuck,) = [pid for pid, s in p.busy().items() if s > 0.5]
    os.kill(stuck, signal.SIGKILL)
    caller.join(timeout=60)
    assert not caller.is_alive()
    assert result[0].score is None and "died" in result[0].error
    assert [v.score for v in result[1:]] == [1.0, 1.0]
    assert stuck not in p.worker_pids()


def test_workers_that_cannot_start_fail_the_tasks_instead_of_hanging():
    with DeadlinePool("no_such_module_anywhere:judge", processes=1) as p:
        (future,) = p.submit(["x"], timeout_s=1.0)
        with pytest.raises(RuntimeError, match="cannot start"):
            future.result(timeout=60)


def _mixed(n: int) -> tuple[list[dict], list[float]]:
    cases = [("\\frac{1}{2}", "$\\boxed{0.5}$", 1.0), ("17", "$\\boxed{18}$", 0.0),
             ("x^2+1", "$\\boxed{1+x^2}$", 1.0), ("\\sqrt{2}", "$\\boxed{2}$", 0.0)]
    picked = [cases[i % len(cases)] for i in range(n)]
    return ([{"answer": g, "completion": done(a)} for g, a, _ in picked],
            [expected for _, _, expected in picked])


def test_concurrent_calls_from_threads_each_get_their_own_results():
    results: dict[int, list] = {}

    def call(k: int) -> None:
        records, _ = _mixed(k + 4)
        results[k] = [v.score for v in verify_batch(records)]

    threads = [threading.Thread(target=call, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(results) == list(range(6))
    for k, scores in results.items():
        assert scores == _mixed(k + 4)[1]


def test_async_callers_are_served_concurrently_without_blocking_the_event_loop():
    async def main() -> tuple[list, int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        tick_task = asyncio.create_task(ticker())
        slow = [{"answer": "4", "completion": done("$\\boxed{9^{9^{9^9}}}$")}]
        batches = [_mixed(5)[0], _mixed(7)[0], slow]
        results = await asyncio.gather(*(averify_batch(b, timeout_s=LIMIT_S) for b in batches))
        tick_task.cancel()
        return results, ticks

    results, ticks = asyncio.run(main())
    assert [v.score for v in results[0]] == _mixed(5)[1]
    assert [v.score for v in results[1]] == _mixed(7)[1]
    assert results[2][0].score == 0.0
    assert ticks > 20  # the loop kept running for the whole wait on the slow record


def test_a_batch_sends_each_distinct_answer_to_the_workers_once():
    group = [{"answer": "\\sqrt{2}", "completion": done("$\\boxed{\\frac{2}{\\sqrt{2}}}$")}] * 8
    before = pool().stats.tasks
    assert [v.score for v in verify_batch(group)] == [1.0] * 8
    assert pool().stats.tasks - before == 1


PARENT = """
import sys, time
from qwqrl.verifiers.pool import DeadlinePool
pool = DeadlinePool("builtins:eval", processes=1)
pool.submit(["__import__('time').sleep(600)"], timeout_s=600)
while not pool.busy():
    time.sleep(0.05)
print(*pool.worker_pids(), flush=True)
time.sleep(600)
"""


def test_a_parent_killed_outright_leaves_no_worker_behind():
    import subprocess
    import sys

    import psutil

    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    try:
        (worker,) = [int(pid) for pid in parent.stdout.readline().split()]
        assert psutil.pid_exists(worker)
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 10
    while psutil.pid_exists(worker) and psutil.Process(worker).status() != "zombie":
        assert time.monotonic() < deadline, "the worker outlived its parent"
        time.sleep(0.05)

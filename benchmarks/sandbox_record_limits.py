"""What a hostile record costs the sandbox: wall time against a trivial record, and host memory.

1. Wall time: each hostile program of `tests/sandbox/test_record_limits.py` (sleeps forever, busy
   loop, blocked pipe read, forked spinning children, ignores SIGTERM, busy threads) as a 4-case
   stdio record at `time_s`, against a trivial record that passes all 4, through one real server.
   The record stops at its first TLE, so the extra cost is about one case's wall backstop
   (2 * time_s + 1) plus a slot restart; the bound checked is time_s + 5 s.
2. Memory: a program that forks CHILDREN children touching CHILD_MB MiB each, every one under
   its per-process `memory_mb`; the host's lowest available memory during the run, against the
   slot's cap (memory_mb + the zygote's headroom).

    .venv/bin/python benchmarks/sandbox_record_limits.py [--time-s 2] [--children 12 --child-mb 400]
"""
from __future__ import annotations

import argparse
import sys
import textwrap
import threading
import time
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from qwqrl.sandbox.isolation import ZYGOTE_HEADROOM_MB  # noqa: E402
from qwqrl.sandbox.local import LocalSandbox  # noqa: E402
from tests.sandbox.test_record_limits import CASES, HOSTILE, TRIVIAL  # noqa: E402


def evaluate(http: httpx.Client, code: str, time_s: float, memory_mb: int = 512,
             tests: dict = CASES) -> tuple[dict, float]:
    started = time.monotonic()
    resp = http.post("/v1/evaluate", json={"code": code, "tests": tests,
                                           "limits": {"time_s": time_s, "memory_mb": memory_mb}})
    resp.raise_for_status()
    return resp.json(), time.monotonic() - started


def walls(http: httpx.Client, time_s: float) -> None:
    print(f"4-case records at time_s={time_s}: wall seconds, hostile vs trivial (bound: trivial + {time_s + 5:g})")
    print(f"{'program':26s} | {'status':6s} {'cases run':>9s} {'reward':>6s} | {'wall s':>6s} {'trivial s':>9s} "
          f"{'extra s':>7s} | within")
    for name, code in HOSTILE.items():
        _, trivial = evaluate(http, TRIVIAL, time_s)
        result, wall = evaluate(http, code, time_s)
        extra = wall - trivial
        print(f"{name:26s} | {result['status']:6s} {len(result['cases']):>9d} {result['reward']:>6.1f} | "
              f"{wall:6.2f} {trivial:9.2f} {extra:7.2f} | {'yes' if extra < time_s + 5 else 'NO'}")


def fan_out(http: httpx.Client, children: int, child_mb: int, memory_mb: int) -> None:
    code = textwrap.dedent(f"""
        import os, time
        for _ in range({children}):
            if os.fork() == 0:
                block = bytearray(b"x") * ({child_mb} << 20)
                time.sleep(2)
                os._exit(0)
        for _ in range({children}):
            os.wait()
        print("0")
    """)
    lowest = [psutil.virtual_memory().available]
    before, done = lowest[0], threading.Event()

    def watch() -> None:
        while not done.is_set():
            lowest[0] = min(lowest[0], psutil.virtual_memory().available)
            time.sleep(0.01)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        result, wall = evaluate(http, code, 10.0, memory_mb,
                                {"type": "stdio", "cases": [{"input": "", "output": "0\n"}]})
    finally:
        done.set()
        watcher.join()
    fell, cap = (before - lowest[0]) >> 20, memory_mb + ZYGOTE_HEADROOM_MB
    print(f"\nfan-out: {children} children x {child_mb} MiB at memory_mb={memory_mb} "
          f"(uncapped they would take {children * child_mb} MiB)")
    print(f"status {result['status']}, reward {result['reward']}, wall {wall:.2f} s; host available memory fell "
          f"{fell} MiB; slot cap {cap} MiB; bound cap + 512 = {cap + 512} MiB; ratio fell/cap = {fell / cap:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-s", type=float, default=2.0)
    parser.add_argument("--children", type=int, default=12)
    parser.add_argument("--child-mb", type=int, default=400)
    parser.add_argument("--memory-mb", type=int, default=512)
    args = parser.parse_args()
    with LocalSandbox(workers=1) as sandbox, httpx.Client(base_url=sandbox.url, timeout=120, trust_env=False) as http:
        isolation = http.get("/v1/info").json()["isolation"]
        print(f"isolation {isolation['level']}, cgroup {isolation['cgroup']}\n")
        walls(http, args.time_s)
        fan_out(http, args.children, args.child_mb, args.memory_mb)


if __name__ == "__main__":
    main()

"""Sandbox throughput: trivial programs through the real server vs bare `python3 -c` subprocesses.

Both run on this machine in the same invocation, at 1, 8 and 32 concurrent requests; the table
gives runs/s and p50/p99 latency for each, and the server/bare ratio. The server runs at the
strongest isolation it detects (printed). Target: >= 1.5x the bare rate on 2 cores, full isolation.

    .venv/bin/python benchmarks/sandbox_throughput.py [--runs 300] [--workers N]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from qwqrl.sandbox.isolation import sandbox_python
from qwqrl.sandbox.local import LocalSandbox

PROGRAM = "print(sum(range(10)))"
CONCURRENCY = (1, 8, 32)


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def bare(runs: int, concurrency: int, python: str) -> tuple[float, list[float]]:
    def one(_: int) -> float:
        start = time.perf_counter()
        done = subprocess.run([python, "-c", PROGRAM], capture_output=True, check=True)
        assert done.stdout == b"45\n"
        return time.perf_counter() - start

    with ThreadPoolExecutor(concurrency) as pool:
        start = time.perf_counter()
        latencies = list(pool.map(one, range(runs)))
    return runs / (time.perf_counter() - start), latencies


async def _post(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> dict:
    """One HTTP/1.1 keep-alive POST. A bare-bones client on purpose: the load generator shares
    the machine's cores with the server, and a heavier client would measure itself."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    return json.loads(await reader.readexactly(length))


async def served(port: int, runs: int, concurrency: int) -> tuple[float, list[float]]:
    body = json.dumps({"code": PROGRAM, "limits": {"time_s": 2.0}}).encode()
    request = (f"POST /v1/run HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body

    async def connect() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await _post(reader, writer, request)  # warm the connection and the slot
        return reader, writer

    connections = await asyncio.gather(*(connect() for _ in range(concurrency)))
    remaining = runs
    latencies: list[float] = []

    async def worker(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            start = time.perf_counter()
            result = await _post(reader, writer, request)
            assert result["status"] == "OK" and result["stdout"] == "45\n", result
            latencies.append(time.perf_counter() - start)
        writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker(r, w) for r, w in connections))
    return runs / (time.perf_counter() - start), latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300, help="programs per cell")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    python = sandbox_python()
    rows = []
    with LocalSandbox(workers=args.workers) as sandbox:
        info = httpx.get(f"{sandbox.url}/v1/info", trust_env=False).json()
        for concurrency in CONCURRENCY:
            bare_rate, bare_lat = bare(args.runs, concurrency, python)
            srv_rate, srv_lat = asyncio.run(served(sandbox.port, args.runs, concurrency))
            rows.append((concurrency, bare_rate, bare_lat, srv_rate, srv_lat))
    print(f"sandbox throughput: {os.cpu_count()} cores, {args.workers} slots, {args.runs} runs per cell, "
          f"isolation {info['isolation']['level']}, bare = `{python} -c`")
    print(f"{'conc':>4} | {'bare runs/s':>11} {'p50 ms':>7} {'p99 ms':>7} | "
          f"{'server runs/s':>13} {'p50 ms':>7} {'p99 ms':>7} | {'ratio':>5}")
    for concurrency, b_rate, b_lat, s_rate, s_lat in rows:
        print(f"{concurrency:>4} | {b_rate:>11.1f} {1000 * statistics.median(b_lat):>7.1f} "
              f"{1000 * percentile(b_lat, 0.99):>7.1f} | {s_rate:>13.1f} {1000 * statistics.median(s_lat):>7.1f} "
              f"{1000 * percentile(s_lat, 0.99):>7.1f} | {s_rate / b_rate:>5.2f}")
    best_bare = max(r[1] for r in rows)
    best_server = max(r[3] for r in rows)
    print(f"best: server {best_server:.1f} runs/s vs bare {best_bare:.1f} runs/s = {best_server / best_bare:.2f}x "
          f"(target >= 1.5x)")


if __name__ == "__main__":
    main()

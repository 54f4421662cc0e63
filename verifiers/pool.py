"""A pool of worker processes with a hard wall-clock limit per task, enforced by the parent.

Why not `concurrent.futures.ProcessPoolExecutor`: it cannot stop a task that runs too long, and
a hung or killed worker breaks the whole executor. Why not math-verify's own timeout: it relies
on SIGALRM, which only works on the main thread and cannot interrupt long C calls.

How it works: workers are plain subprocesses (`python -m qwqrl.verifiers.pool MODULE:FUNCTION`,
so no `__main__` re-import and no fork of a threaded parent), each warmed once and kept. One
dispatcher thread in the parent sends tasks to idle workers in chunks over pipes and gets one
reply per task; the task at the head of a worker's chunk has a deadline, and a worker that
misses it is killed (SIGKILL) and replaced, its task reported as timed out and the rest of its
chunk re-queued. A worker that dies is replaced the same way. Callers get futures, so the pool
serves any number of threads and event loops at once.
"""
from __future__ import annotations

import collections
import importlib
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Callable

_HEADER = struct.Struct("!Q")


@dataclass(frozen=True)
class Outcome:
    """How one task ended: its `value`, or `timed_out`, or `error` (worker died or raised)."""
    value: Any = None
    timed_out: bool = False
    error: str | None = None
    seconds: float = 0.0


@dataclass
class PoolStats:
    tasks: int = 0
    timeouts: int = 0
    crashes: int = 0
    restarts: int = 0
    max_task_s: float = 0.0


@dataclass
class _Task:
    payload: Any
    timeout_s: float
    future: Future = field(default_factory=Future)


class _Worker:
    def __init__(self, target: str, memory_mb: int | None) -> None:
        args = [sys.executable, "-m", "qwqrl.verifiers.pool", target, str(memory_mb or 0),
                str(os.getpid())]
        # A session of its own: terminal signals (Ctrl-C, Ctrl-Z) go to the parent, which
        # decides when workers stop, and with the kernel's autogroup scheduling the workers are
        # not squeezed into the CPU share of the caller's session.
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     bufsize=0, close_fds=True, start_new_session=True)
        self.fd_in = self.proc.stdin.fileno()
        self.fd_out = self.proc.stdout.fileno()
        self.ready = False
        self.started = time.monotonic()
        self.inflight: collections.deque[_Task] = collections.deque()
        self.head_started = 0.0

    def send(self, tasks: list[_Task]) -> None:
        _write(self.fd_in, [t.payload for t in tasks])
        self.inflight.extend(tasks)
        self.head_started = time.monotonic()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.proc.stdin.close()
        self.proc.stdout.close()


class DeadlinePool:
    """Run `target` ("module:function", a picklable payload -> picklable value) in worker
    processes; each task gets at most `timeout_s` seconds of wall clock in a worker."""

    def __init__(self, target: str, processes: int | None = None, chunk_size: int = 8,
                 memory_mb: int | None = None, start_timeout_s: float = 120.0) -> None:
        self.target = target
        self.processes = processes or len(os.sched_getaffinity(0))
        self.chunk_size = chunk_size
        self.memory_mb = memory_mb
        self.start_timeout_s = start_timeout_s
        self.stats = PoolStats()
        self.pid = os.getpid()
        self._queue: collections.deque[_Task] = collections.deque()
        self._lock = threading.Lock()
        self._closing = False
        self._start_failures = 0
        self._workers: list[_Worker] = []
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._run, name="deadline-pool", daemon=True)
        self._thread.start()

    def submit(self, payloads: list[Any], timeout_s: float) -> list[Future]:
        """Queue tasks; each future resolves to an Outcome (or raises if workers cannot start)."""
        tasks = [_Task(p, timeout_s) for p in payloads]
        with self._lock:
            if self._closing:
                raise RuntimeError("the pool is closed")
            self._queue.extend(tasks)
        os.write(self._wake_w, b"x")
        return [t.future for t in tasks]

    def map(self, payloads: list[Any], timeout_s: float) -> list[Outcome]:
        return [f.result() for f in self.submit(payloads, timeout_s)]

    @property
    def closed(self) -> bool:
        return self._closing

    def worker_pids(self) -> list[int]:
        return [w.proc.pid for w in list(self._workers)]

    def busy(self) -> dict[int, float]:
        """Worker pid -> seconds spent so far on its current task, for workers with one."""
        now = time.monotonic()
        return {w.proc.pid: now - w.head_started for w in list(self._workers) if w.inflight}

    def close(self) -> None:
        with self._lock:
            if self._closing:
                return
            self._closing = True
        os.write(self._wake_w, b"x")
        self._thread.join()
        os.close(self._wake_r)
        os.close(self._wake_w)

    def __enter__(self) -> DeadlinePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- dispatcher thread -------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._closing:
                self._step()
        finally:  # closed, or the dispatcher itself failed: no task may wait forever
            with self._lock:
                self._closing = True
            for w in self._workers:
                w.kill()
                self._requeue(list(w.inflight))
            self._fail_queued("the pool was closed")

    def _step(self) -> None:
        while len(self._workers) < self.processes:
            self._workers.append(_Worker(self.target, self.memory_mb))
        self._dispatch()
        readable, _, _ = select.select([self._wake_r] + [w.fd_out for w in self._workers], [], [],
                                       self._seconds_to_next_deadline())
        if self._wake_r in readable:
            os.read(self._wake_r, 4096)
        now = time.monotonic()
        for w in list(self._workers):
            if w.fd_out in readable:
                self._receive(w, now)
            elif w.inflight and now - w.head_started > w.inflight[0].timeout_s:
                self._replace(w, Outcome(timed_out=True, seconds=now - w.head_started))
            elif not w.ready and now - w.started > self.start_timeout_s:
                self._replace(w, None, startup_error="did not start in time")

    def _dispatch(self) -> None:
        idle = [w for w in self._workers if w.ready and not w.inflight]
        for w in idle:
            with self._lock:
                if not self._queue:
                    return
                # Small batches are spread over every worker (including those still starting);
                # big ones go in full chunks.
                n = max(1, min(self.chunk_size, -(-len(self._queue) // self.processes)))
                tasks = [self._queue.popleft() for _ in range(min(n, len(self._queue)))]
            try:
                w.send(tasks)
            except OSError:  # died while idle: its tasks go back, the reader sees the EOF
                w.inflight.clear()
                self._requeue(tasks)

    def _seconds_to_next_deadline(self) -> float:
        now = time.monotonic()
        waits = [w.head_started + w.inflight[0].timeout_s - now for w in self._workers if w.inflight]
        waits += [w.started + self.start_timeout_s - now for w in self._workers if not w.ready]
        return max(0.0, min(waits, default=1.0))

    def _receive(self, w: _Worker, now: float) -> None:
        try:
            kind, value = _read(w.fd_out)
        except EOFError:
            if w.ready:
                self._replace(w, Outcome(error=f"worker {w.proc.pid} died "
                                               f"(exit {w.proc.wait()})"))
            else:
                self._replace(w, None, startup_error=f"exited with {w.proc.wait()} at start")
            return
        if kind == "ready":
            w.ready = True
            self._start_failures = 0
            return
        task = w.inflight.popleft()
        seconds = now - w.head_started
        w.head_started = now
        self.stats.tasks += 1
        self.stats.max_task_s = max(self.stats.max_task_s, seconds)
        outcome = Outcome(value=value, seconds=seconds) if kind == "ok" else \
            Outcome(error=value, seconds=seconds)
        task.future.set_result(outcome)

    def _replace(self, w: _Worker, head: Outcome | None, startup_error: str | None = None) -> None:
        """Kill `w`; the head task ends with `head`, the rest of its chunk is re-queued."""
        w.kill()
        self._workers.remove(w)
        self.stats.restarts += 1
        if head is not None and w.inflight:
            self.stats.timeouts += head.timed_out
            self.stats.crashes += head.error is not None
            self.stats.max_task_s = max(self.stats.max_task_s, head.seconds)
            w.inflight.popleft().future.set_result(head)
        self._requeue(list(w.inflight))
        if startup_error is not None:
            self._start_failures += 1
            if self._start_failures >= 3:
                self._fail_queued(f"{self.target} workers cannot start: {startup_error}")

    def _requeue(self, tasks: list[_Task]) -> None:
        with self._lock:
            self._queue.extendleft(reversed(tasks))

    def _fail_queued(self, message: str) -> None:
        with self._lock:
            tasks, self._queue = list(self._queue), collections.deque()
        for t in tasks:
            t.future.set_exception(RuntimeError(message))


def _write(fd: int, obj: Any) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(_HEADER.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view):]


def _read_exactly(fd: int, n: int) -> bytes:
    parts = []
    while n:
        chunk = os.read(fd, n)
        if not chunk:
            raise EOFError
        parts.append(chunk)
        n -= len(chunk)
    return b"".join(parts)


def _read(fd: int) -> Any:
    (size,) = _HEADER.unpack(_read_exactly(fd, _HEADER.size))
    return pickle.loads(_read_exactly(fd, size))




def _die_with_parent(parent_pid: int) -> None:
    """Linux: the kernel kills this worker when its parent's dispatcher thread ends, so a
    parent killed with SIGKILL leaves no worker behind, even one stuck in a long C call."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent_pid:  # the parent was already gone
        os._exit(1)


def _worker_main(target: str, memory_mb: int, parent_pid: int) -> None:
    """Serve tasks from stdin until EOF. Stray prints go to stderr, never into the protocol."""
    _die_with_parent(parent_pid)
    fd_in, fd_out = 0, os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    if memory_mb:
        import resource

        limit = memory_mb * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    module_name, _, name = target.partition(":")
    module = importlib.import_module(module_name)
    fn: Callable[[Any], Any] = getattr(module, name)
    if hasattr(module, "WARMUP"):  # a payload to run once before reporting ready
        fn(module.WARMUP)
    _write(fd_out, ("ready", os.getpid()))
    while True:
        try:
            payloads = _read(fd_in)
        except EOFError:
            return
        for payload in payloads:
            try:
                reply = ("ok", fn(payload))
            except Exception as e:  # reported to the caller as this task's error, never a score
                reply = ("error", f"{type(e).__name__}: {e}")
            _write(fd_out, reply)


if __name__ == "__main__":
    _worker_main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))

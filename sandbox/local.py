"""A sandbox server on this machine for the life of a `with` block.

Used by `qwqrl score` and the training pipeline when $QWQRL_SANDBOX_URL is not set, and by the
tests. It starts `python -m qwqrl.sandbox.server` on a free 127.0.0.1 port, waits for /healthz,
and on exit stops exactly the process it started (and that process's children), by PID.
Where the machine offers only weak isolation the server refuses to start and this raises
IsolationTooWeak, unless `allow_weak_isolation=True` or $QWQRL_ALLOW_WEAK_SANDBOX=1.
"""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time

from collections.abc import Sequence

import httpx
import psutil

from qwqrl.sandbox.client import SandboxClient, env_urls
from qwqrl.sandbox.isolation import ALLOW_WEAK_FLAG, IsolationTooWeak, weak_refusal

START_TIMEOUT_S = 60.0
REFUSED_EXIT = 4  # the server's exit status when it refuses weak isolation (the server imports it)
STOP_TIMEOUT_S = 10.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalSandbox:
    def __init__(self, workers: int | None = None, extra_args: list[str] | None = None,
                 log_path: str | None = None, allow_weak_isolation: bool = False,
                 port: int = 0) -> None:
        self.workers = workers or os.cpu_count() or 1
        self.fixed_port = port  # 0: a free port at each start; else restarts keep the address
        self.extra_args = list(extra_args or []) + ([ALLOW_WEAK_FLAG] if allow_weak_isolation else [])
        self.log_path = log_path
        self.port = 0
        self.url = ""
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> LocalSandbox:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self.port = self.fixed_port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        argv = [sys.executable, "-m", "qwqrl.sandbox.server", "--host", "127.0.0.1", "--port", str(self.port),
                "--workers", str(self.workers), "--log-level", "warning", *self.extra_args]
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        try:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT if self.log_path else None,
                                         preexec_fn=_die_with_parent)
        finally:
            if self.log_path:
                log.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                self.proc = None
                if code == REFUSED_EXIT:
                    raise IsolationTooWeak(weak_refusal())
                raise RuntimeError(f"sandbox server exited during start-up (code {code})")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/healthz", timeout=1.0, trust_env=False).status_code == 200:
                    return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"sandbox server did not answer /healthz within {START_TIMEOUT_S:.0f}s")

    def stop(self) -> None:
        """SIGTERM the server (it stops its slots), then SIGKILL it and any child left."""
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        stop_process_tree(proc, STOP_TIMEOUT_S)


def stop_process_tree(proc: subprocess.Popen, timeout_s: float) -> None:
    """SIGTERM `proc`, SIGKILL it after `timeout_s`, then SIGKILL the descendants it had when
    this began (a server's workers outlive it if it dies first)."""
    try:
        children = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    for child in children:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()


def _die_with_parent() -> None:
    """Linux: the server gets SIGTERM when the process that started it dies, even by SIGKILL,
    so a killed trainer never leaves a sandbox behind."""
    import ctypes

    PR_SET_PDEATHSIG = 1
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def open_sandbox(stack: contextlib.ExitStack, urls: Sequence[str] = ()) -> SandboxClient:
    """A client for `urls`, else for the replicas in $QWQRL_SANDBOX_URL, else for a local server
    that `stack` stops when it closes. Every command that judges code gets its sandbox here."""
    urls = list(urls) or env_urls()
    if not urls:
        urls = [stack.enter_context(LocalSandbox()).url]
    return SandboxClient(urls)

"""Fixtures for the sandbox suite: real servers (uvicorn over HTTP on 127.0.0.1) and process checks."""
from __future__ import annotations

import shutil
import time
from collections.abc import Iterator

import httpx
import psutil
import pytest

from qwqrl.sandbox.local import LocalSandbox


needs_gxx = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ is not installed (C++ support is off)")


class Server:
    """A running sandbox server plus the helpers the tests need."""

    def __init__(self, sandbox: LocalSandbox) -> None:
        self.sandbox = sandbox
        self.url = sandbox.url
        self.http = httpx.Client(base_url=sandbox.url, timeout=120, trust_env=False)
        self.info = self.http.get("/v1/info").json()

    @property
    def pid(self) -> int:
        assert self.sandbox.proc is not None
        return self.sandbox.proc.pid

    @property
    def level(self) -> str:
        return self.info["isolation"]["level"]

    def run(self, code: str, stdin: str = "", language: str = "python", **limits: float) -> dict:
        resp = self.http.post("/v1/run", json={"language": language, "code": code, "stdin": stdin,
                                               "limits": limits or {"time_s": 1.0}})
        assert resp.status_code == 200, resp.text
        return resp.json()

    def evaluate(self, code: str, tests: dict, language: str = "python", **extra: object) -> dict:
        body = {"language": language, "code": code, "tests": tests,
                "limits": extra.pop("limits", {"time_s": 1.0}), **extra}
        resp = self.http.post("/v1/evaluate", json=body)
        assert resp.status_code == 200, resp.text
        return resp.json()

    def metric(self, name: str) -> float:
        for line in self.http.get("/metrics").text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        raise KeyError(name)

    def leftovers(self) -> list[psutil.Process]:
        """Processes that are neither a slot's launcher nor its zygote: programs left behind,
        found both below the server and anywhere on the host under this server's slot uids."""
        uid_range = self.info["isolation"]["slot_uids"]
        slot_uids = range(uid_range[0], uid_range[1] + 1) if uid_range else range(0)
        server = psutil.Process(self.pid)
        launchers = server.children()
        keep = {self.pid, *(p.pid for p in launchers)}
        for launcher in launchers:
            try:
                keep |= {c.pid for c in launcher.children()}
            except psutil.NoSuchProcess:
                pass
        extra = [p for p in server.children(recursive=True) if p.pid not in keep]
        for proc in psutil.process_iter(["uids"]):
            uids = proc.info["uids"]
            if uids and uids.real in slot_uids and proc.pid not in keep and proc not in extra:
                extra.append(proc)
        return extra

    def assert_clean_and_healthy(self, within_s: float = 5.0) -> None:
        deadline = time.monotonic() + within_s
        while (left := self.leftovers()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not left, f"processes left behind: {[(p.pid, p.name()) for p in left]}"
        health = self.http.get("/healthz")
        assert health.status_code == 200 and health.json()["ok"]


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    with LocalSandbox(workers=2) as sandbox:
        srv = Server(sandbox)
        try:
            yield srv
        finally:
            srv.http.close()


@pytest.fixture
def isolated(server: Server) -> Server:
    """The server, when its programs run in their own PID namespace as a slot uid (kill(-1) is
    then confined to the slot); otherwise the test is skipped rather than risk the host."""
    if server.level not in ("namespaces", "full"):
        pytest.skip(f"isolation level {server.level!r}: signal attacks could reach host processes")
    return server

"""The HTTP service: admission (429), size limits (413), clear 4xx, disconnects, isolation
levels and `--require`, strict mode, and that LocalSandbox cleans up exactly what it started."""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time

import httpx
import psutil
import pytest

from qwqrl.cli import build_parser, main
from qwqrl.sandbox.isolation import ALLOW_WEAK_ENV, ALLOW_WEAK_FLAG, INSTALL_BWRAP, IsolationTooWeak
from qwqrl.sandbox.local import LocalSandbox, free_port

from .conftest import Server

SLEEPER = {"code": "import time\ntime.sleep(1.5)\nprint('done')", "limits": {"time_s": 2.0}}


@pytest.fixture(scope="module")
def tight() -> Server:
    with LocalSandbox(workers=1, extra_args=["--queue", "0", "--max-body-mb", "1"]) as sandbox:
        yield Server(sandbox)


def test_overload_answers_429_with_retry_after(tight: Server) -> None:
    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=tight.url, timeout=30, trust_env=False) as http:
            return list(await asyncio.gather(*(http.post("/v1/run", json=SLEEPER) for _ in range(3))))

    codes = sorted(r.status_code for r in asyncio.run(burst()))
    assert codes == [200, 429, 429]
    rejected = [r for r in asyncio.run(burst()) if r.status_code == 429]
    assert rejected and int(rejected[0].headers["Retry-After"]) >= 1
    assert tight.metric("qwqrl_sandbox_inflight") == 0


def test_oversized_body_is_413(tight: Server) -> None:
    resp = tight.http.post("/v1/run", json={"code": "print(1)", "stdin": "x" * (2 << 20)})
    assert resp.status_code == 413 and "body" in resp.json()["error"]
    chunked = tight.http.post("/v1/run", content=iter([b'{"code": "print(1)"}']),
                              headers={"content-type": "application/json"})
    assert chunked.status_code == 411
    assert tight.http.get("/healthz").status_code == 200


@pytest.mark.parametrize("body, field", [
    ({"stdin": ""}, "code"),
    ({"code": "print(1)", "limits": {"time_s": -1}}, "limits.time_s"),
    ({"code": "print(1)", "limits": {"time_s": 999}}, "limits.time_s"),
    ({"code": "print(1)", "language": "cobol"}, "language"),
    ({"code": "print(1)", "surprise": 1}, "surprise"),
])
def test_malformed_run_requests_are_4xx_naming_the_field(server: Server, body: dict, field: str) -> None:
    resp = server.http.post("/v1/run", json=body)
    assert resp.status_code == 422 and field in resp.json()["error"], resp.text


@pytest.mark.parametrize("tests, field", [
    ({"type": "stdio", "cases": []}, "cases"),
    ({"type": "call", "cases": [{"args": [1], "expected": 1}]}, "fn_name"),
    ({"type": "nope"}, "tests.type"),
    ('{"inputs": [1', "tests"),
    ({"inputs": ["1"], "outputs": []}, "input_output"),
])
def test_malformed_tests_are_422_naming_the_field(server: Server, tests: object, field: str) -> None:
    resp = server.http.post("/v1/evaluate", json={"code": "print(1)", "tests": tests})
    assert resp.status_code == 422 and field in resp.json()["error"], resp.text
    assert server.http.post("/v1/evaluate", content=b"{not json", headers={"content-type": "application/json"}).status_code == 422


def test_batch_answers_in_order(server: Server) -> None:
    tests = {"type": "stdio", "cases": [{"input": "", "output": "1"}]}
    body = [{"code": f"print({i})", "tests": tests} for i in (1, 2, 1)]
    statuses = [r["status"] for r in server.http.post("/v1/evaluate_batch", json=body).json()]
    assert statuses == ["OK", "WA", "OK"]


def test_info_and_metrics_report_isolation_and_counts(server: Server) -> None:
    info = server.http.get("/v1/info").json()
    assert info["isolation"]["level"] in ("rlimits", "uid", "namespaces", "full")
    assert "python" in info["languages"] and info["workers"] == 2
    cgroup = info["isolation"]["cgroup"]
    if info["isolation"]["layers"]["cgroups"]:  # the version the host mounts, and what is used
        unified = os.path.exists("/sys/fs/cgroup/cgroup.controllers")
        assert cgroup["version"] == (2 if unified else 1) and cgroup["controllers"] == ["memory", "pids"]
        if not unified:  # v1 caps swap where the host accounts it (memsw files exist)
            assert cgroup["swap_limited"] == os.path.exists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes")
    else:
        assert cgroup is None
    server.run("print(1)")
    text = server.http.get("/metrics").text
    assert "# TYPE qwqrl_sandbox_runs_total counter" in text
    assert server.metric("qwqrl_sandbox_runs_total") >= 1


def test_disconnecting_client_leaves_no_process_behind(server: Server) -> None:
    body = {"code": "import time\ntime.sleep(30)", "limits": {"time_s": 15.0}}
    errors: list[Exception] = []

    def call() -> None:
        try:
            httpx.post(f"{server.url}/v1/run", json=body, timeout=2.0, trust_env=False)
        except httpx.TimeoutException as e:  # the client gives up and closes the connection
            errors.append(e)

    caller = threading.Thread(target=call)
    caller.start()
    deadline = time.monotonic() + 2
    while not server.leftovers() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.leftovers(), "the program should be running while the client waits"
    caller.join()
    assert errors
    server.assert_clean_and_healthy(within_s=3.0)
    assert server.run("print('after')")["stdout"] == "after\n"


def test_required_level_not_met_refuses_to_start() -> None:
    with pytest.raises(RuntimeError, match="exited during start-up"):
        with LocalSandbox(workers=1, extra_args=["--no-bwrap", "--require", "namespaces"],
                          allow_weak_isolation=True):
            pass
    assert main(["sandbox", "serve", "--port", "0"]) == 2


def _names_every_way_out(message: str) -> None:
    for part in (ALLOW_WEAK_FLAG, f"{ALLOW_WEAK_ENV}=1", INSTALL_BWRAP, "read every file"):
        assert part in message, (part, message)


def test_weak_isolation_is_refused_naming_the_opt_in_and_the_install(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.delenv(ALLOW_WEAK_ENV, raising=False)
    with pytest.raises(IsolationTooWeak) as refused:
        with LocalSandbox(workers=1, extra_args=["--no-bwrap"]):
            pass
    _names_every_way_out(str(refused.value))
    capsys.readouterr()
    assert main(["sandbox", "serve", "--no-bwrap", "--workers", "1", "--port", str(free_port())]) == 2
    _names_every_way_out(capsys.readouterr().err)


def test_the_environment_variable_opts_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ALLOW_WEAK_ENV, "1")
    with LocalSandbox(workers=1, extra_args=["--no-bwrap"]) as sandbox:
        assert Server(sandbox).level in ("uid", "rlimits")


def test_score_refuses_weak_isolation_unless_opted_in(tmp_path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture) -> None:
    """`qwqrl score` on a machine without bubblewrap (PATH hides it): exit 2 naming the opt-in,
    no output file; with the flag it scores."""
    monkeypatch.delenv("QWQRL_SANDBOX_URL", raising=False)
    monkeypatch.setenv(ALLOW_WEAK_ENV, "0")  # restored after the test, whatever the flag sets
    monkeypatch.setenv("PATH", str(tmp_path))
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    tests = {"type": "stdio", "cases": [{"input": "", "output": "1"}]}
    src.write_text(json.dumps({"task": "code", "tests": tests, "completion": "</think>```python\nprint(1)\n```"}) + "\n")
    capsys.readouterr()
    assert main(["score", str(src), "-o", str(out)]) == 2
    _names_every_way_out(capsys.readouterr().err)
    assert not out.exists()
    assert main(["score", str(src), "-o", str(out), ALLOW_WEAK_FLAG]) == 0
    assert json.loads(out.read_text())["score"] == 1.0


def test_train_and_demo_accept_the_opt_in_flag() -> None:
    parser = build_parser()
    for command in (["train", "r.yaml"], ["demo"], ["score", "in.jsonl", "-o", "out.jsonl"],
                    ["sandbox", "serve"]):
        assert parser.parse_args([*command, ALLOW_WEAK_FLAG]).allow_weak_isolation is True


def test_without_bubblewrap_the_server_runs_and_says_its_level() -> None:
    with LocalSandbox(workers=1, extra_args=["--no-bwrap"], allow_weak_isolation=True) as sandbox:
        srv = Server(sandbox)
        assert srv.level in ("uid", "rlimits")
        assert srv.info["isolation"]["layers"]["bubblewrap_namespaces"] is False
        assert srv.run("print(6 * 7)")["stdout"] == "42\n"
        assert srv.run("while True:\n    pass", time_s=1)["status"] == "TLE"


def test_strict_mode_uses_a_fresh_sandbox_per_run() -> None:
    with LocalSandbox(workers=1, extra_args=["--strict"]) as sandbox:
        srv = Server(sandbox)
        for _ in range(3):
            assert srv.run("print(1)")["status"] == "OK"
        assert srv.metric("qwqrl_sandbox_slot_restarts_total") >= 2


def test_local_sandbox_stops_exactly_what_it_started() -> None:
    bystander = psutil.Popen(["sleep", "30"])
    try:
        with LocalSandbox(workers=2) as sandbox:
            assert sandbox.proc is not None
            started = [psutil.Process(sandbox.proc.pid), *psutil.Process(sandbox.proc.pid).children(recursive=True)]
            assert len(started) >= 3
        time.sleep(0.2)
        assert not [p for p in started if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        assert bystander.is_running()
    finally:
        bystander.kill()
        bystander.wait()


def test_sandbox_modules_import_without_torch() -> None:
    code = ("import sys\nimport qwqrl.sandbox.cli, qwqrl.sandbox.client, qwqrl.sandbox.local, "
            "qwqrl.sandbox.requests, qwqrl.sandbox.server\nassert 'torch' not in sys.modules, 'torch imported'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_root_then_drop_bubblewrap_mode_holds_the_same_walls() -> None:
    if os.geteuid() != 0:
        pytest.skip("starting bwrap as root needs a root server")
    with LocalSandbox(workers=1, extra_args=["--bwrap-as-root", "--require", "namespaces"]) as sandbox:
        srv = Server(sandbox)
        assert srv.info["isolation"]["layers"]["bubblewrap_mode"] == "root-then-drop"
        who = srv.run("import os\nprint(os.getpid(), os.getuid() > 0, os.getgroups())")
        assert who["stdout"] == "2 True []\n", who
        for attack in ("import os\nos.setuid(0)", "print(open('/etc/passwd').read())",
                       "import socket\nsocket.create_connection(('127.0.0.1', 9), timeout=1)"):
            assert srv.run(attack)["status"] == "RE", attack
        assert srv.run("import os, signal, subprocess\nsubprocess.Popen(['sleep', '30'])\n"
                       "os.kill(-1, signal.SIGKILL)\nopen('/tmp/x', 'w').write('x')\nprint('alive')")["stdout"] == "alive\n"
        assert srv.run("import os\nprint(os.listdir('/tmp'))")["stdout"] == "[]\n"
        srv.assert_clean_and_healthy()


def test_a_slot_killed_from_outside_is_replaced_without_an_se() -> None:
    with LocalSandbox(workers=2) as sandbox:
        srv = Server(sandbox)
        launchers = psutil.Process(srv.pid).children()
        assert len(launchers) == 2
        launchers[0].kill()  # the slot's sandbox dies between jobs
        launchers[0].wait(5)
        results = [srv.run(f"print({i})") for i in range(6)]
        assert [r["stdout"] for r in results] == [f"{i}\n" for i in range(6)]
        assert srv.metric("qwqrl_sandbox_slot_restarts_total") >= 1
        srv.assert_clean_and_healthy()

"""Adversarial programs against a real server: each pins the verdict, that the host is
unchanged, that nothing is left running, and that the server is still healthy afterwards."""
from __future__ import annotations

import hashlib
import socket
import subprocess
import textwrap
from pathlib import Path

import pytest

from .conftest import Server, needs_gxx


def _digest(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture(autouse=True)
def _clean_after(server: Server):
    yield
    server.assert_clean_and_healthy()


@pytest.mark.parametrize("code", [
    "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
    "import threading, time\nwhile True:\n    threading.Thread(target=time.sleep, args=(60,)).start()\n",
    "import os\nos.system('f() { f | f & }; f; sleep 30')\n",
], ids=["os-fork", "threads", "shell"])
def test_fork_bombs_are_contained(server: Server, code: str) -> None:
    result = server.run(code)
    assert result["status"] in ("TLE", "RE"), result


def test_ten_gigabyte_allocation_is_mle(server: Server) -> None:
    result = server.run("x = bytearray(10 * 1024 ** 3)\nprint(len(x))", time_s=2, memory_mb=256)
    assert result["status"] == "MLE", result


def test_gradual_memory_growth_is_mle(server: Server) -> None:
    code = "chunks = []\nwhile True:\n    chunks.append(bytearray(8 * 1024 * 1024))\n"
    result = server.run(code, time_s=3, memory_mb=256)
    assert result["status"] == "MLE", result
    assert result["max_rss_mb"] < 400


@needs_gxx
def test_cpp_huge_allocation_is_mle(server: Server) -> None:
    code = "#include <vector>\nint main(){ std::vector<char> v(10ull << 30, 1); return v[5]; }\n"
    result = server.run(code, language="cpp", time_s=2, memory_mb=256)
    assert result["status"] == "MLE", result


@pytest.mark.parametrize("code", [
    "import sys\nchunk = 'x' * (1 << 20)\nfor _ in range(1024):\n    sys.stdout.write(chunk)\n",
    "import sys\nchunk = 'y' * (1 << 20)\nfor _ in range(1024):\n    sys.stderr.write(chunk)\n",
    "while True:\n    print('flood' * 100)\n",
    "with open('/tmp/big', 'wb') as f:\n    while True:\n        f.write(b'z' * (1 << 20))\n",
], ids=["1GB-stdout", "1GB-stderr", "print-flood", "fill-tmp"])
def test_output_floods_are_ole(server: Server, code: str) -> None:
    result = server.run(code, time_s=3)
    assert result["status"] == "OLE", {k: v for k, v in result.items() if k != "stdout"}
    assert len(result["stdout"]) <= server.info["limits"]["output_mb"] << 20


def test_busy_loop_is_tle(server: Server) -> None:
    result = server.run("while True:\n    pass\n", time_s=1)
    assert result["status"] == "TLE" and result["cpu_ms"] > 0


def test_time_limit_counts_cpu_not_wall_time(server: Server) -> None:
    result = server.run("import time\ntime.sleep(1.5)\nprint('rested')", time_s=1)
    assert result["status"] == "OK" and result["stdout"] == "rested\n"


def test_sleeping_loop_is_tle_by_wall_backstop(server: Server) -> None:
    result = server.run("import time\nwhile True:\n    time.sleep(1)\n", time_s=1)
    assert result["status"] == "TLE"
    assert 2500 <= result["wall_ms"] < 6000  # backstop: 2 x time_s + 1 s


def test_many_files_in_tmp_do_not_survive_the_run(server: Server) -> None:
    make = "import os\nfor i in range(20000):\n    open(f'/tmp/f{i}', 'w').close()\nprint(len(os.listdir('/tmp')))"
    assert server.run(make, time_s=5)["stdout"].strip() == "20000"
    for _ in range(4):  # every slot
        assert server.run("import os\nprint(os.listdir('/tmp'))")["stdout"].strip() == "[]"


def test_locked_directories_in_tmp_are_still_wiped(server: Server) -> None:
    lock = ("import os\nos.makedirs('/tmp/a/b/c')\nopen('/tmp/a/b/c/f', 'w').close()\n"
            "os.chmod('/tmp/a/b', 0)\nos.chmod('/tmp/a', 0o500)\nprint('locked')")
    assert server.run(lock)["stdout"] == "locked\n"
    for _ in range(4):
        assert server.run("import os\nprint(os.listdir('/tmp'))")["stdout"] == "[]\n"


def test_host_password_files_cannot_be_read_or_written(server: Server) -> None:
    before = _digest("/etc/passwd")
    for code in ("print(open('/etc/shadow').read())", "print(open('/etc/passwd').read())",
                 "open('/etc/passwd', 'a').write('evil::0:0::/:/bin/sh\\n')"):
        result = server.run(code)
        assert result["status"] == "RE", result
        assert "root:" not in result["stdout"]
    assert _digest("/etc/passwd") == before


def test_host_marker_file_is_invisible_and_unchanged(server: Server, tmp_path: Path) -> None:
    marker = tmp_path / "marker.txt"
    marker.write_text("host")
    read = server.run(f"print(open({str(marker)!r}).read())")
    assert read["status"] == "RE" and "host" not in read["stdout"]
    write = server.run(f"import os\nos.makedirs({str(tmp_path)!r}, exist_ok=True)\n"
                       f"open({str(marker)!r}, 'w').write('pwned')\nprint('wrote')")
    assert write["status"] == "OK" and write["stdout"] == "wrote\n"  # into the slot's private tmpfs
    assert marker.read_text() == "host"


def test_sockets_cannot_reach_a_loopback_listener(server: Server) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.setblocking(False)
        port = listener.getsockname()[1]
        code = (f"import socket\ns = socket.create_connection(('127.0.0.1', {port}), timeout=1)\n"
                "s.sendall(b'exfiltrate')\nprint('connected')")
        result = server.run(code)
        assert result["status"] == "RE" and "connected" not in result["stdout"]
        with pytest.raises(BlockingIOError):
            listener.accept()


@pytest.mark.parametrize("call", [
    "socket.socket(socket.AF_INET, socket.SOCK_STREAM)",
    "socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)",
    "socket.socket(socket.AF_NETLINK, socket.SOCK_RAW)",
    "ctypes.CDLL(None).ptrace(16, 1, 0, 0) == 0",          # PTRACE_ATTACH to the zygote
    "ctypes.CDLL(None).syscall(272, 0x10000000) == 0",      # unshare(CLONE_NEWUSER)
    "ctypes.CDLL(None).syscall(165, b'none', b'/tmp', b'tmpfs', 0, None) == 0",  # mount
], ids=["inet", "inet6", "netlink", "ptrace-attach-zygote", "unshare-user", "mount"])
def test_seccomp_denies_sockets_ptrace_and_namespaces(server: Server, call: str) -> None:
    if not server.info["isolation"]["layers"]["seccomp"]:
        pytest.skip("no seccomp layer on this host")
    code = f"import ctypes, socket\ntry:\n    ok = {call}\nexcept PermissionError:\n    ok = False\nprint('allowed' if ok else 'denied')"
    result = server.run(code)
    assert result["stdout"] == "denied\n", result


@pytest.mark.parametrize("code", [
    "import os, signal\nos.kill(1, signal.SIGKILL)\nprint('alive')",
    "import os, signal, subprocess\nsubprocess.Popen(['sleep', '30'])\nos.kill(-1, signal.SIGKILL)\nprint('alive')",
    "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nprint('alive')",
], ids=["kill-1", "kill-minus-1", "kill-parent"])
def test_signals_cannot_reach_the_zygote_or_the_host(isolated: Server, code: str) -> None:
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        restarts = isolated.metric("qwqrl_sandbox_slot_restarts_total")
        result = isolated.run(code)
        assert result["status"] == "OK" and result["stdout"] == "alive\n", result
        assert bystander.poll() is None
        assert isolated.metric("qwqrl_sandbox_slot_restarts_total") == restarts
    finally:
        bystander.kill()
        bystander.wait()


def test_double_fork_daemon_is_killed_after_the_run(server: Server) -> None:
    code = textwrap.dedent("""
        import os, time
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                time.sleep(120)
            os._exit(0)
        time.sleep(0.2)
        print('parent done')
    """)
    result = server.run(code)
    assert result["status"] == "OK" and result["stdout"] == "parent done\n"


@pytest.mark.parametrize("exit_call", ["import sys\nsys.exit(0)", "import os\nos._exit(0)"])
def test_exiting_before_the_asserts_is_not_a_pass(server: Server, exit_call: str) -> None:
    code = f"def add(a, b):\n    return a - b\n{exit_call}\n"
    result = server.evaluate(code, {"type": "assert", "asserts": ["assert add(1, 2) == 3"]})
    assert result["status"] == "WA" and result["reward"] == 0.0


def test_exiting_before_the_call_returns_is_not_a_pass(server: Server) -> None:
    code = "import os\ndef add(a, b):\n    os._exit(0)\n"
    result = server.evaluate(code, {"type": "call", "fn_name": "add", "cases": [{"args": [1, 2], "expected": 3}]})
    assert result["status"] == "WA" and result["reward"] == 0.0


@pytest.mark.parametrize("code", [
    "class Anything:\n    def __eq__(self, other):\n        return True\n"
    "def add(a, b):\n    return Anything()\n",
    "class Liar(int):\n    def __eq__(self, other):\n        return True\n"
    "def add(a, b):\n    return Liar(0)\n",
    "def add(a, b):\n    print(3)\n    print('PASS')\n    print('\\n3')\n    return None\n",
], ids=["rigged-eq", "int-subclass", "forged-output"])
def test_rigged_results_do_not_pass_call_tests(server: Server, code: str) -> None:
    tests = {"type": "call", "fn_name": "add", "cases": [{"args": [1, 2], "expected": 3}]}
    result = server.evaluate(code, tests)
    assert result["status"] == "WA" and result["reward"] == 0.0, result


def test_state_does_not_leak_between_runs(server: Server) -> None:
    poison = ("import builtins, math, os, sys\nbuiltins.leaked = 1\nmath.pi = 3\nsys.setrecursionlimit(50)\n"
              "open('/tmp/state', 'w').write('x')\n"
              "for path in ('/state', '/etc/state', '/usr/state', '/dev/shm/state'):\n"
              "    try:\n        open(path, 'w').write('x')\n    except OSError:\n        pass\n")
    probe = ("import builtins, math, os, sys\n"
             "print(hasattr(builtins, 'leaked'), math.pi == 3, sys.getrecursionlimit() == 50, "
             "any(os.path.exists(p) for p in ('/tmp/state', '/state', '/etc/state', '/usr/state', '/dev/shm/state')))")
    for _ in range(4):
        assert server.run(poison)["status"] == "OK"
        assert server.run(probe)["stdout"] == "False False False False\n"
    draws = {server.run("import random\nprint(random.random())")["stdout"] for _ in range(4)}
    assert len(draws) == 4, "every run must get its own random seed"

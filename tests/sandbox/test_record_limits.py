"""Limits on a whole run and a whole record, through a real server: every process of a run
shares one memory cap (the slot's cgroup), and a record stops at its first time-out, so hostile
programs cost about one case's wall limit and leave nothing running."""
from __future__ import annotations

import textwrap
import threading
import time

import psutil
import pytest

from qwqrl.sandbox.isolation import ZYGOTE_HEADROOM_MB

from .conftest import Server

TIME_S = 1.0
CASES = {"type": "stdio", "cases": [{"input": f"{i}\n", "output": f"{i}\n"} for i in range(4)]}
TRIVIAL = "print(input())"
HOSTILE = {
    "sleep-forever": "import time\nwhile True:\n    time.sleep(60)\n",
    "busy-loop": "while True:\n    pass\n",
    "blocked-pipe-read": "import os\nr, w = os.pipe()\nos.read(r, 1)\n",
    "forked-spinning-children": textwrap.dedent("""
        import os
        for _ in range(4):
            if os.fork() == 0:
                while True:
                    pass
        while True:
            os.wait()
    """),
    "ignores-sigterm": "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nwhile True:\n    time.sleep(1)\n",
    "busy-threads": textwrap.dedent("""
        import threading
        def spin():
            while True:
                pass
        for _ in range(4):
            threading.Thread(target=spin).start()
        spin()
    """),
}


def _timed(server: Server, code: str) -> tuple[dict, float]:
    started = time.monotonic()
    result = server.evaluate(code, CASES, limits={"time_s": TIME_S})
    return result, time.monotonic() - started


@pytest.mark.parametrize("name", list(HOSTILE))
def test_a_hostile_record_stops_at_its_first_time_out(server: Server, name: str) -> None:
    trivial, trivial_s = _timed(server, TRIVIAL)
    assert trivial["reward"] == 1.0 and trivial["passed"] == 4
    result, elapsed = _timed(server, HOSTILE[name])
    assert result["status"] == "TLE" and result["reward"] == 0.0, result
    assert len(result["cases"]) == 1 and result["total"] == 4 and result["passed"] == 0
    assert elapsed - trivial_s < TIME_S + 5, f"{name}: {elapsed:.1f}s vs trivial {trivial_s:.1f}s"
    server.assert_clean_and_healthy()


def test_the_remaining_cases_still_run_after_a_wrong_answer(server: Server) -> None:
    result = server.evaluate("n = int(input())\nprint(n if n else -1)", CASES)
    assert result["status"] == "WA" and len(result["cases"]) == 4 and result["passed"] == 3


def test_forked_children_share_one_memory_cap(server: Server) -> None:
    """16 children of 100 MiB each, every one under the 128 MiB per-process limit: the slot's
    cgroup stops the family at 128 + headroom MiB, and the host never gives much more."""
    if not server.info["isolation"]["cgroup"]:
        pytest.skip("no cgroup layer on this host (the server needs root and a writable cgroup tree)")
    memory_mb, children, child_mb = 128, 16, 100
    code = textwrap.dedent(f"""
        import os, time
        for _ in range({children}):
            if os.fork() == 0:
                block = bytearray(b"x") * ({child_mb} << 20)
                time.sleep(1.5)
                os._exit(0)
        for _ in range({children}):
            os.wait()
        print("0")
    """)
    lowest = [psutil.virtual_memory().available]
    before = lowest[0]
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            lowest[0] = min(lowest[0], psutil.virtual_memory().available)
            time.sleep(0.01)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        result = server.evaluate(code, {"type": "stdio", "cases": [{"input": "", "output": "0\n"}]},
                                 limits={"time_s": 5.0, "memory_mb": memory_mb})
    finally:
        done.set()
        watcher.join()
    assert result["status"] in ("MLE", "RE") and result["reward"] == 0.0, result
    slot_cap = (memory_mb + ZYGOTE_HEADROOM_MB) << 20
    assert before - lowest[0] < slot_cap + (512 << 20), f"host lost {(before - lowest[0]) >> 20} MiB"
    server.assert_clean_and_healthy()


def test_the_program_not_the_zygote_is_the_oom_killers_choice(server: Server) -> None:
    result = server.run("import os\nprint(open('/proc/self/oom_score_adj').read().strip(), "
                        "open(f'/proc/{os.getppid()}/oom_score_adj').read().strip())")
    assert result["stdout"] == "1000 0\n", result

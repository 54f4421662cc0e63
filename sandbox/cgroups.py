"""Per-slot cgroups (memory and pids), created when a slot starts.

Why: rlimits bound one process; a fork bomb or a family of processes is bounded only by a
cgroup. The memory limit is set again before every run to that run's `memory_mb` plus the
zygote's headroom (`set_memory`), so a program that forks children, each under its own address
space limit, is still capped as a whole; swap is capped with it where the host accounts for it
(v1 `memory.memsw.limit_in_bytes` = the limit, v2 `memory.swap.max` = 0). Both cgroup v1
(separate memory/ and pids/ hierarchies) and v2 (one unified tree) are supported; where neither
is writable the server runs without this layer and says so.
"""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
GROUP = "qwqrl-sandbox"


def join(procs: list[str]) -> None:
    """Move the calling process into the cgroups whose `cgroup.procs` files are given
    (plain syscalls only: this runs between fork and exec)."""
    pid = str(os.getpid()).encode()
    for path in procs:
        fd = os.open(path, os.O_WRONLY)
        try:
            os.write(fd, pid)
        finally:
            os.close(fd)


class Cgroups:
    """The slots' parent cgroup(s); `create` makes one slot's cgroup and returns its procs files."""

    def __init__(self, version: int) -> None:
        self.version = version
        self.swap_limited = False  # whether a slot's swap use is capped too (set by `detect`)
        if version == 2:
            self.parents = [ROOT / GROUP]
        else:
            self.parents = [ROOT / "memory" / GROUP, ROOT / "pids" / GROUP]

    @classmethod
    def detect(cls) -> Cgroups | None:
        """A usable hierarchy, proven by creating and removing a probe cgroup; else None."""
        if os.geteuid() != 0:
            return None
        version = 2 if (ROOT / "cgroup.controllers").exists() else 1
        if version == 1 and not all((ROOT / c).is_dir() for c in ("memory", "pids")):
            return None
        groups = cls(version)
        try:
            groups._prepare()
            probe = f"probe-{os.getpid()}"
            procs = groups.create(probe, memory_bytes=64 << 20, pids=8)
            try:
                swap = "memory.swap.max" if version == 2 else "memory.memsw.limit_in_bytes"
                groups.swap_limited = (groups.parents[0] / probe / swap).exists()
                groups.set_memory(probe, 48 << 20)
                subprocess.run(["true"], check=True, preexec_fn=lambda: join(procs))
            finally:
                groups.remove(probe)
        except (OSError, subprocess.SubprocessError):
            return None
        return groups

    def _prepare(self) -> None:
        for parent in self.parents:
            parent.mkdir(exist_ok=True)
        if self.version == 2:
            for control in (ROOT / "cgroup.subtree_control", self.parents[0] / "cgroup.subtree_control"):
                enabled = control.read_text().split()
                if not {"memory", "pids"} <= set(enabled):
                    control.write_text("+memory +pids")

    def create(self, name: str, memory_bytes: int, pids: int) -> list[str]:
        self.remove(name)
        dirs = [parent / name for parent in self.parents]
        for d in dirs:
            d.mkdir()
        if self.version == 2:
            (dirs[0] / "memory.max").write_text(str(memory_bytes))
            with contextlib.suppress(OSError):
                (dirs[0] / "memory.swap.max").write_text("0")
            (dirs[0] / "pids.max").write_text(str(pids))
        else:
            (dirs[0] / "memory.limit_in_bytes").write_text(str(memory_bytes))
            with contextlib.suppress(OSError):
                (dirs[0] / "memory.memsw.limit_in_bytes").write_text(str(memory_bytes))
            (dirs[1] / "pids.max").write_text(str(pids))
        return [str(d / "cgroup.procs") for d in dirs]

    def describe(self) -> dict:
        """What `/v1/info` and the start-up log say about this layer."""
        return {"version": self.version, "controllers": ["memory", "pids"], "swap_limited": self.swap_limited,
                "parents": [str(p) for p in self.parents]}

    def set_memory(self, name: str, memory_bytes: int) -> None:
        """Cap everything in the slot together (and its swap, where accounted) at `memory_bytes`.
        v1 requires limit <= memsw limit at every step: lower the limit first, raise memsw first."""
        d = self.parents[0] / name
        if self.version == 2:
            (d / "memory.max").write_text(str(memory_bytes))
            return
        files = [d / "memory.limit_in_bytes"]
        if self.swap_limited:
            files.append(d / "memory.memsw.limit_in_bytes")
        if memory_bytes > int(files[0].read_text()):
            files.reverse()
        for f in files:
            f.write_text(str(memory_bytes))

    def pids(self, name: str) -> set[int]:
        found: set[int] = set()
        for parent in self.parents:
            with contextlib.suppress(OSError):
                found |= {int(p) for p in (parent / name / "cgroup.procs").read_text().split()}
        return found

    def oom_kills(self, name: str) -> int:
        """How many processes the kernel's OOM killer has killed in this slot so far."""
        path = self.parents[0] / name / ("memory.events" if self.version == 2 else "memory.oom_control")
        with contextlib.suppress(OSError):
            for line in path.read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
        return 0

    def remove(self, name: str) -> None:
        """Kill what is left in the slot's cgroup (only sandboxed processes can be there) and remove it."""
        for pid in self.pids(name):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for parent in self.parents:
            d = parent / name
            for _ in range(100):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:  # busy until the killed processes are reaped
                    time.sleep(0.01)

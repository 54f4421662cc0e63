"""Host side of the slots: one long-lived sandboxed zygote per slot, and the pool that lends them.

Why a pool of warm slots: a fresh bubblewrap sandbox plus interpreter costs tens of ms per run;
a job sent to a warm zygote costs about one fork. A slot whose zygote faults, times out, was
OOM-killed or hit a limit is recycled (its whole process tree and cgroup killed, a fresh
sandbox started). A cancelled job (client gone, server stopping) kills the slot on the spot,
so no process outlives the request that started it. In strict mode every job gets a fresh slot.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import struct
import time
from collections.abc import AsyncIterator

from qwqrl.sandbox.isolation import Isolation, Launch
from qwqrl.sandbox.metrics import Metrics

FRAME = struct.Struct("!II")
START_TIMEOUT_S = 30.0
PROTOCOL_GRACE_S = 15.0
log = logging.getLogger("qwqrl.sandbox")


class SlotFault(Exception):
    """The sandbox itself failed (not the program): the verdict is SE."""


class Slot:
    def __init__(self, index: int, isolation: Isolation, metrics: Metrics) -> None:
        self.index, self.isolation, self.metrics = index, isolation, metrics
        self.proc: asyncio.subprocess.Process | None = None
        self.launch: Launch | None = None
        self.stale = True
        self.memory_mb: int | None = None  # the run memory cap now set on the slot's cgroup

    async def start(self) -> None:
        launch = self.isolation.launch(self.index)
        try:
            self.proc = await asyncio.create_subprocess_exec(
                *launch.argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                preexec_fn=launch.preexec, pass_fds=launch.pass_fds, start_new_session=True)
        finally:
            self.isolation.cleanup(launch)
        self.launch, self.memory_mb = launch, None
        try:
            hello, _ = await asyncio.wait_for(self._read(), START_TIMEOUT_S)
        except (asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError) as e:
            await self.stop()
            raise SlotFault(f"slot {self.index} did not start: {e!r}") from None
        if not hello.get("ready"):
            await self.stop()
            raise SlotFault(f"slot {self.index} did not start: {hello}")
        self.stale = False

    async def restart(self) -> None:
        await self.stop()
        self.metrics.slot_restarts += 1
        await self.start()

    def kill(self) -> None:
        """Kill the slot's process tree now (synchronous, safe inside cancellation)."""
        self.stale = True
        if self.proc and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGKILL)
        if self.launch:
            self.isolation.remove_cgroup(self.launch)

    async def stop(self) -> None:
        self.kill()
        if self.proc:
            with contextlib.suppress(ProcessLookupError):
                await self.proc.wait()
            self.proc = None

    async def run(self, job: dict, blob: bytes = b"") -> tuple[dict, bytes]:
        assert self.proc and self.proc.stdin and self.launch
        memory_mb = int(job["memory_mb"])
        if memory_mb != self.memory_mb:
            try:
                self.isolation.set_run_memory(self.launch, memory_mb)
            except OSError as e:  # v1 refuses a limit below what the slot still holds
                self.kill()
                raise SlotFault(f"slot {self.index} could not cap its memory at {memory_mb} MiB: {e}") from None
            self.memory_mb = memory_mb
        oom_before = self._oom_kills()
        head = json.dumps(job).encode()
        try:
            self.proc.stdin.write(FRAME.pack(len(head), len(blob)) + head + blob)
            await self.proc.stdin.drain()
            header, out = await asyncio.wait_for(self._read(), float(job["wall_s"]) + PROTOCOL_GRACE_S)
        except asyncio.CancelledError:
            self.kill()
            raise
        except (asyncio.TimeoutError, asyncio.IncompleteReadError, ConnectionError, ValueError) as e:
            self.kill()
            raise SlotFault(f"slot {self.index} stopped answering: {e!r}") from None
        if "fault" in header:
            self.kill()
            raise SlotFault(f"slot {self.index} failed: {header['fault']}")
        header["oom_killed"] = self._oom_kills() > oom_before
        if (header["oom_killed"] or header["wall_killed"] or header["recycle"]
                or header["signal"] in (signal.SIGKILL, signal.SIGXCPU)):
            self.stale = True  # hit a hard limit or left a mess: recycle before the next job
        return header, out

    def _oom_kills(self) -> int:
        cg = self.isolation.cgroups
        return cg.oom_kills(self.launch.cgroup) if cg and self.launch and self.launch.cgroup else 0

    async def _read(self) -> tuple[dict, bytes]:
        assert self.proc and self.proc.stdout
        hlen, blen = FRAME.unpack(await self.proc.stdout.readexactly(FRAME.size))
        header = json.loads(await self.proc.stdout.readexactly(hlen))
        return header, await self.proc.stdout.readexactly(blen)


class SlotPool:
    """Lends idle slots; a job that hits a sandbox fault is retried once on a fresh slot."""

    def __init__(self, isolation: Isolation, workers: int, metrics: Metrics, strict: bool = False) -> None:
        self.isolation, self.metrics, self.strict = isolation, metrics, strict
        self.slots = [Slot(i, isolation, metrics) for i in range(workers)]
        self.idle: asyncio.Queue[Slot] = asyncio.Queue()

    async def start(self) -> None:
        await asyncio.gather(*(slot.start() for slot in self.slots))
        for slot in self.slots:
            self.idle.put_nowait(slot)

    async def stop(self) -> None:
        await asyncio.gather(*(slot.stop() for slot in self.slots), return_exceptions=True)

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[Slot]:
        slot = await self.idle.get()
        try:
            if slot.stale or slot.proc is None or slot.proc.returncode is not None:
                await slot.restart()
            yield slot
        finally:
            if self.strict:
                slot.stale = True
            self.idle.put_nowait(slot)

    async def run(self, job: dict, blob: bytes = b"") -> tuple[dict, bytes]:
        try:
            return await self._run_once(job, blob)
        except SlotFault as e:
            log.warning("sandbox fault, retrying on a fresh slot: %s", e)
            return await self._run_once(job, blob)

    async def _run_once(self, job: dict, blob: bytes) -> tuple[dict, bytes]:
        started = time.monotonic()
        try:
            async with self.slot() as slot:
                result = await slot.run(job, blob)
        except SlotFault:
            self.metrics.slot_faults += 1
            raise
        self.metrics.runs += 1
        self.metrics.run_seconds += time.monotonic() - started
        return result

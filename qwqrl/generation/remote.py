"""Rollout workers apart from the learner: a `Generator` whose engines run in other processes.

Layout (docs/scaling.md): the learner trains on its devices while k rollout workers
(qwqrl.generation.remote_worker), each one HF or vLLM engine on devices of its own, generate.
This is what lets one-step-off / asynchronous RL overlap generation with the update: a colocated
engine shares the learner's devices, so the two can only take turns.

Three channels, each the standard tool for its job:
- control: a `multiprocessing.connection` per worker (authenticated, pickled messages): prompts
  out, finished groups of rollouts back, errors back with the worker's traceback. Prompts and
  rollouts are small; no HTTP server sits in between.
- weights: a process group of the learner (rank 0) and the workers only, built on its own TCPStore
  (qwqrl.generation.weight_broadcast): one broadcast per tensor, NCCL on GPUs, gloo on CPU, the
  way vLLM's `StatelessProcessGroup`, TRL's vLLM client and OpenRLHF push weights to engines.
- launch: `spawn` starts the workers as children of the learner, pinned to the CPUs / GPUs the
  recipe names; `external` waits for workers a launcher started (torchrun, a slurm heterogeneous
  job: `python -m qwqrl.generation.remote_worker --learner HOST:PORT`). Both dial the learner's
  listener, so everything after the hello is the same code.

Versions: the first weights the workers get are version 0; each `sync_weights` sends the next one
(or the version the caller names). `sync_weights` returns when the broadcast is done, not when the
workers have loaded it: a worker finishes the generation it is running, then loads the newest
weights it has before its next one. Every rollout carries `policy_version`, the version that
generated it. In a training run the trainer's `RolloutCollector` stamps its own count of
updates over it (docs/generation.md, "Contract"); the two agree, since every sync goes through the trainer.

Failure: every wait on a worker also watches its process; a worker that died or reported an
error raises `RemoteWorkerError` naming it, its exit status and its traceback, instead of hanging.
`close()` (also at interpreter exit) stops the workers, then terminates and kills stragglers; a
worker whose learner vanished exits by itself when its connection closes.
"""
from __future__ import annotations

import atexit
import itertools
import multiprocessing as mp
import os
import queue
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, Listener, wait
from pathlib import Path
from typing import Any

from qwqrl.generation import weight_broadcast as wb
from qwqrl.generation.base import Rollout, SamplingParams
from qwqrl.generation.remote_worker import AUTHKEY_ENV, EngineSpec, Placement, serve
from qwqrl.generation.weights import iter_full_weights, unwrap_model

POLL_S = 0.5  # how often a wait on workers checks that they are alive


class RemoteWorkerError(RuntimeError):
    """A rollout worker died or failed; the message says which, how, and its traceback."""


@dataclass
class RemoteSettings:
    """How to run the rollout workers (the recipe's `generation.remote`, see config.py).

    engine: "hf" or "vllm". workers: how many. launch: "spawn" (children of this process) or
    "external" (started by a launcher; they dial `host:port` with `$QWQRL_REMOTE_AUTHKEY`).
    placements: one per spawned worker (CPUs / GPUs). options: engine keyword arguments.
    timeout_s: how long to wait for workers to start and join the weight group.
    """
    engine: str = "hf"
    workers: int = 1
    launch: str = "spawn"
    host: str = "127.0.0.1"
    port: int = 0
    placements: list[Placement] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    timeout_s: float = 300.0


def settings_for(gen: Any, seed: int) -> RemoteSettings:
    """The recipe's `generation` section (placement remote) as RemoteSettings. The engine options
    are what a colocated engine of the same backend would get, less sleep mode: a worker's
    devices are its own, there is nothing to hand back during the update."""
    remote = gen.remote
    if gen.backend == "vllm":
        options = {**gen.vllm.model_dump(), "enable_sleep_mode": False, "seed": seed}
    else:
        options = {"batch_size": gen.batch_size}
    placements = [Placement(cpus=(remote.cpus or [None] * remote.workers)[i],
                            gpus=(remote.gpus or [None] * remote.workers)[i])
                  for i in range(remote.workers)]
    return RemoteSettings(engine=gen.backend, workers=remote.workers, launch=remote.launch,
                          host=remote.host, port=remote.port, placements=placements,
                          options=options, timeout_s=remote.timeout_s)


def engine_files(model: Any, tokenizer: Any) -> dict[str, bytes]:
    """The learner's config (architecture included) and tokenizer, as files for the workers."""
    from qwqrl.generation.vllm_backend import write_engine_config

    with tempfile.TemporaryDirectory(prefix="qwqrl-remote-") as folder:
        write_engine_config(model, tokenizer, folder)
        return {p.name: p.read_bytes() for p in Path(folder).iterdir() if p.is_file()}


class RemoteGenerator:
    """`Generator` over rollout workers in other processes (see the module docstring).

    model: the learner (HF or peft model, or a DeepSpeed engine around one); the workers are
    built from its config and receive its weights at once (version 0).
    """

    def __init__(self, model: Any, tokenizer: Any, settings: RemoteSettings) -> None:
        if settings.workers < 1:
            raise ValueError(f"generation.remote.workers must be >= 1, got {settings.workers}")
        if settings.placements and len(settings.placements) != settings.workers:
            raise ValueError(f"generation.remote: {len(settings.placements)} placements for "
                             f"{settings.workers} workers; give one per worker")
        self.settings = settings
        self.version = -1
        self._requests = itertools.count()
        self._send_lock = threading.Lock()
        self.processes: list[Any] = []
        self.conns: list[Connection] = []
        self._closed = False
        atexit.register(self.close)
        try:
            self._start(model, tokenizer)
            self.sync_weights(model, version=0)
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------------------ protocol

    def generate(self, prompts: list[str], n: int, sampling: SamplingParams) -> list[Rollout]:
        """All rollouts, prompt 0's n first (the order `Generator.generate` promises)."""
        groups = sorted(self.generate_stream(prompts, n, sampling), key=lambda g: g[0].prompt_index)
        return [r for group in groups for r in group]

    def generate_stream(self, prompts: list[str], n: int, sampling: SamplingParams
                        ) -> Iterator[list[Rollout]]:
        """Finished groups of n rollouts (one prompt each), in the order the workers finish
        them. Prompts are split into one contiguous share per worker."""
        request = next(self._requests)
        share = -(-len(prompts) // len(self.conns))
        busy = []
        with self._send_lock:
            for i, conn in enumerate(self.conns):
                chunk = prompts[i * share:(i + 1) * share]
                if chunk:
                    self._send(i, ("generate", request, chunk, i * share, n, sampling))
                    busy.append(i)
        while busy:
            for i, message in self._receive(busy):
                if message[1] != request:
                    continue  # left over from a stream its caller abandoned
                if message[0] == "done":
                    busy.remove(i)
                else:
                    yield message[2]

    def sync_weights(self, model: Any, version: int | None = None) -> None:
        """Broadcast `model`'s full weights to every worker as `version` (default: the next
        one). Returns when the broadcast is done; the workers load them before their next
        generation. Every learner rank must call it under ZeRO-3 (gathering is collective)."""
        self.version = self.version + 1 if version is None else version
        device = next(unwrap_model(model).parameters()).device
        if wb.backend_for(device) != self.backend:
            raise ValueError(f"the learner's weights moved to {device}; the weight group is {self.backend}")
        with self._send_lock:
            for name, tensor in iter_full_weights(model):
                tensor = tensor.detach().contiguous()
                header = ("tensor", name, tuple(tensor.shape), wb.dtype_name(tensor))
                for i in range(len(self.conns)):
                    self._send(i, header)
                self._check_alive()
                try:
                    wb.broadcast(self.group, tensor)
                except RuntimeError as err:  # a peer vanished mid-broadcast: say which one
                    for process in self.processes:
                        process.join(timeout=1)
                    self._check_alive()
                    raise RemoteWorkerError(f"weight broadcast to the rollout workers failed: {err}") from err
            for i in range(len(self.conns)):
                self._send(i, ("weights_done", self.version))

    def sleep(self) -> None:
        """No-op: the workers' engines do not share the learner's devices."""

    def wake_up(self) -> None:
        """No-op, see `sleep`."""

    # ------------------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Stop the workers (a polite "stop", then SIGTERM, then SIGKILL) and free the channels.
        Safe to call twice; also runs at interpreter exit."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        for conn in self.conns:
            try:
                conn.send(("stop",))
            except OSError:
                pass
        for process in self.processes:
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()
                process.join(timeout=5)
            if process.is_alive():
                process.kill()
                process.join()
        for conn in self.conns:
            conn.close()
        if hasattr(self, "listener"):
            self.listener.close()
        self.__dict__.pop("group", None)  # the store goes last: the group's peers may still read it
        self.__dict__.pop("store", None)

    def __enter__(self) -> RemoteGenerator:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------------------------ internals

    def _start(self, model: Any, tokenizer: Any) -> None:
        s = self.settings
        authkey = os.urandom(32) if s.launch == "spawn" else _external_authkey()
        self.listener = Listener((s.host, s.port), authkey=authkey)
        self.address = self.listener.address
        if s.launch == "spawn":
            context = mp.get_context("spawn")
            for i in range(s.workers):
                placement = s.placements[i] if s.placements else Placement()
                process = context.Process(target=serve, args=(self.address, authkey, i, placement),
                                          name=f"qwqrl-rollout-worker-{i}")
                process.start()
                self.processes.append(process)
        elif s.launch != "external":
            raise ValueError(f"generation.remote.launch must be 'spawn' or 'external', got {s.launch!r}")
        self.conns = self._accept(s.workers)
        device = next(unwrap_model(model).parameters()).device
        self.backend = wb.backend_for(device)
        world = s.workers + 1
        self.store = wb.rendezvous_store(s.host, 0, 0, world, s.timeout_s)
        spec = EngineSpec(kind=s.engine, files=engine_files(model, tokenizer),
                          dtype=wb.dtype_name(next(unwrap_model(model).parameters())),
                          host=s.host, store_port=self.store.port, world=world,
                          backend=self.backend, timeout_s=s.timeout_s, options=s.options)
        for i in range(s.workers):
            self._send(i, ("engine", spec))
        self.group = wb.weight_group(self.store, s.host, 0, world, self.backend, s.timeout_s)

    def _accept(self, count: int) -> list[Connection]:
        """The workers' connections, ordered by their index, watching spawned ones for death."""
        arrived: queue.Queue = queue.Queue()

        def accept() -> None:
            for _ in range(count):
                try:
                    conn = self.listener.accept()
                    arrived.put((conn, conn.recv()))
                except (OSError, EOFError) as err:
                    arrived.put(err)
                    return

        threading.Thread(target=accept, name="qwqrl-remote-accept", daemon=True).start()
        conns: dict[int, Connection] = {}
        deadline = time.monotonic() + self.settings.timeout_s
        while len(conns) < count:
            try:
                item = arrived.get(timeout=POLL_S)
            except queue.Empty:
                self._check_alive()
                if time.monotonic() > deadline:
                    raise RemoteWorkerError(
                        f"{count - len(conns)} of {count} rollout workers did not connect to "
                        f"{self.address} within generation.remote.timeout_s={self.settings.timeout_s}")
                continue
            if isinstance(item, BaseException):
                raise RemoteWorkerError(f"accepting rollout workers failed: {item}") from item
            conn, (_, index, _pid) = item
            if not 0 <= index < count or index in conns:
                raise RemoteWorkerError(f"a rollout worker connected with index {index}; expected "
                                        f"each of 0..{count - 1} once")
            conns[index] = conn
        return [conns[i] for i in range(count)]

    def _send(self, index: int, message: tuple) -> None:
        try:
            self.conns[index].send(message)
        except OSError as err:
            raise self._failure(index, f"its connection broke ({err})") from err

    def _receive(self, indices: list[int]) -> Iterator[tuple[int, tuple]]:
        """(worker index, message) for each message ready within POLL_S; raises on failures."""
        ready = wait([self.conns[i] for i in indices], timeout=POLL_S)
        if not ready:
            self._check_alive()
        for conn in ready:
            index = self.conns.index(conn)
            try:
                message = conn.recv()
            except (EOFError, OSError):
                raise self._failure(index, "its connection closed") from None
            if message[0] == "error":
                raise self._failure(index, f"it raised:\n{message[2]}")
            yield index, message

    def _check_alive(self) -> None:
        for i, process in enumerate(self.processes):
            if not process.is_alive():
                raise self._failure(i, "it is no longer running")

    def _failure(self, index: int, what: str) -> RemoteWorkerError:
        process = self.processes[index] if index < len(self.processes) else None
        if process is not None:
            process.join(timeout=1)
        status = f" (exit status {process.exitcode})" if process is not None and process.exitcode is not None else ""
        return RemoteWorkerError(f"rollout worker {index}{status} failed: {what}")


def _external_authkey() -> bytes:
    key = os.environ.get(AUTHKEY_ENV)
    if not key:
        raise ValueError(f"generation.remote.launch 'external' needs ${AUTHKEY_ENV}: the same secret "
                         "in the learner's and every worker's environment")
    return key.encode()

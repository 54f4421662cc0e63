"""A rollout worker: one generation engine in a process of its own, driven by a learner.

The learner's `RemoteGenerator` (qwqrl.generation.remote) starts the worker (a spawned child) or
waits for it (started by a launcher: `python -m qwqrl.generation.remote_worker --learner HOST:PORT
--index I`, with `QWQRL_REMOTE_AUTHKEY` in the environment). Either way the worker dials the
learner's control listener, says hello, and gets an `EngineSpec` back: the engine kind, the
learner's model config and tokenizer files (so a worker on another node needs nothing on disk),
and the rendezvous of the weight-broadcast group (qwqrl.generation.weight_broadcast).

Two threads, so that a weight sync never waits for a generation:
- the control thread reads the learner's messages. Prompts go to a job queue. A weight sync
  ("tensor" headers, one broadcast each, then "weights_done") is received into fresh buffers
  while the engine keeps generating, and parked as the pending weights (a newer set replaces an
  older one not yet loaded).
- the main thread runs jobs: before each one it loads the pending weights, if any (vLLM's
  in-place reload, `vllm_compat.reload_weights`, or a copy into the HF model's parameters), then
  streams the finished groups back, each rollout tagged with the version of the weights that
  produced it. Weights therefore change between generate calls, never inside one.

The worker ends on "stop", and also when the learner's end of the connection closes (the learner
exited or was killed), so a worker never outlives its learner. Any failure is sent back as an
"error" message with the traceback before the process exits with status 1.
"""
from __future__ import annotations

import argparse
import os
import queue
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from multiprocessing.connection import Client, Connection
from pathlib import Path
from typing import Any

AUTHKEY_ENV = "QWQRL_REMOTE_AUTHKEY"
# The learner's launcher variables must not leak into a worker: vLLM's external launcher would
# join the learner's world with them.
LAUNCHER_ENV = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT",
                "GROUP_RANK", "ROLE_RANK", "TORCHELASTIC_RUN_ID")


@dataclass
class EngineSpec:
    """What the learner tells a worker after its hello (see the module docstring).

    kind: "hf" or "vllm". files: the learner's config and tokenizer files by name. dtype: the
    learner's parameter dtype name. options: HFGenerator / VLLMGenerator keyword arguments.
    host, store_port, world, backend, timeout_s: the weight-broadcast group's rendezvous.
    """
    kind: str
    files: dict[str, bytes]
    dtype: str
    host: str
    store_port: int
    world: int
    backend: str
    timeout_s: float
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class Placement:
    """Where a spawned worker runs: the CPUs it may use (also its torch thread count) and the
    GPUs it sees (CUDA_VISIBLE_DEVICES). None: inherit the learner's."""
    cpus: list[int] | None = None
    gpus: list[int] | None = None


def pin(placement: Placement) -> None:
    """Restrict this process to its CPUs and GPUs. Runs before torch touches a device."""
    for key in LAUNCHER_ENV:
        os.environ.pop(key, None)
    if placement.gpus is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, placement.gpus))
    if placement.cpus:
        os.sched_setaffinity(0, placement.cpus)
        os.environ["OMP_NUM_THREADS"] = str(len(placement.cpus))
        import torch

        torch.set_num_threads(len(placement.cpus))


class PendingWeights:
    """The newest complete set of received weights not yet loaded into the engine."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value: tuple[int, dict[str, Any]] | None = None

    def put(self, version: int, weights: dict[str, Any]) -> None:
        with self._lock:
            self._value = (version, weights)

    def take(self) -> tuple[int, dict[str, Any]] | None:
        with self._lock:
            value, self._value = self._value, None
            return value


def build_engine(spec: EngineSpec, folder: str) -> Any:
    """The worker's generator, built from the learner's files with placeholder weights (the
    learner's first sync fills them in)."""
    for name, data in spec.files.items():
        Path(folder, name).write_bytes(data)
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.padding_side = "left"
    if spec.kind == "vllm":
        from qwqrl.generation.vllm_backend import VLLMGenerator

        return VLLMGenerator(folder, tokenizer, dtype=spec.dtype, load_format="dummy", **spec.options)
    if spec.kind != "hf":
        raise ValueError(f"rollout worker engine must be 'hf' or 'vllm', got {spec.kind!r}")
    import torch

    from qwqrl.generation.hf import HFGenerator

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(folder),
                                             dtype=getattr(torch, spec.dtype)).to(device)
    return HFGenerator(model, tokenizer, **spec.options)


def load_weights(engine: Any, weights: dict[str, Any]) -> None:
    """Load a full set of checkpoint-named weights into the engine, between generate calls."""
    if hasattr(engine, "llm"):  # VLLMGenerator
        from qwqrl.generation.vllm_compat import reload_weights

        reload_weights(engine.llm, weights.items())
        return
    params = dict(engine.model.named_parameters())
    missing, unknown = sorted(set(params) - set(weights)), sorted(set(weights) - set(params))
    if missing or unknown:
        raise ValueError(f"weight sync does not match the worker's model: missing {missing[:5]}, "
                         f"unknown {unknown[:5]}")
    for name, tensor in weights.items():
        params[name].data.copy_(tensor)


class Worker:
    """The two threads of the module docstring, around one engine and one connection."""

    def __init__(self, conn: Connection, index: int, spec: EngineSpec) -> None:
        import torch

        from qwqrl.generation import weight_broadcast as wb

        self.conn, self.index, self.spec = conn, index, spec
        self.jobs: queue.Queue = queue.Queue()
        self.pending = PendingWeights()
        self.version = -1  # no weights loaded yet
        self.device = torch.device("cuda" if spec.backend == "nccl" else "cpu")
        self.store = wb.rendezvous_store(spec.host, spec.store_port, index + 1, spec.world, spec.timeout_s)
        self.group = wb.weight_group(self.store, spec.host, index + 1, spec.world, spec.backend,
                                     spec.timeout_s)

    def control(self) -> None:
        """Control thread: read messages until "stop" or the learner's end closes."""
        from qwqrl.generation import weight_broadcast as wb

        weights: dict[str, Any] = {}
        try:
            while True:
                message = self.conn.recv()
                kind = message[0]
                if kind == "tensor":
                    _, name, shape, dtype = message
                    weights[name] = wb.empty_like_spec(shape, dtype, self.device)
                    wb.broadcast(self.group, weights[name])
                elif kind == "weights_done":
                    self.pending.put(message[1], weights)
                    weights = {}
                elif kind == "generate":
                    self.jobs.put(message[1:])
                elif kind == "stop":
                    break
                else:
                    raise ValueError(f"rollout worker got an unknown message {kind!r}")
        except EOFError:
            pass  # the learner is gone: stop
        except BaseException as err:  # handed to the main thread, which reports it
            self.jobs.put(err)
            return
        self.jobs.put(None)

    def run(self, engine: Any) -> None:
        """Main thread: run generate jobs until the control thread says stop."""
        while (job := self.jobs.get()) is not None:
            if isinstance(job, BaseException):
                raise job
            self._load_pending(engine)
            request, prompts, offset, n, sampling = job
            for group in engine.generate_stream(prompts, n, sampling):
                for rollout in group:
                    rollout.prompt_index += offset
                    rollout.policy_version = self.version
                self.conn.send(("groups", request, group))
            self.conn.send(("done", request))

    def _load_pending(self, engine: Any) -> None:
        pending = self.pending.take()
        if pending is not None:
            self.version, weights = pending
            load_weights(engine, weights)
        if self.version < 0:
            raise RuntimeError("rollout worker asked to generate before any weights arrived")


def dial(address: tuple[str, int], authkey: bytes, patience_s: float = 300.0) -> Connection:
    """Connect to the learner's listener; a worker a launcher started may come up before the
    learner listens, so a refused connection is retried for `patience_s`."""
    deadline = time.monotonic() + patience_s
    while True:
        try:
            return Client(address, authkey=authkey)
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def serve(address: tuple[str, int], authkey: bytes, index: int, placement: Placement) -> None:
    """A worker's whole life: pin, dial the learner, build the engine, serve, report failures.

    Ends the process with `os._exit` once everything it opened is closed: interpreter teardown
    after a served run took 4-5 s (HF) and over 10 s (vLLM) on 2 cores, which a stopping
    trainer would wait for, or give up on and kill."""
    pin(placement)
    conn = dial(address, authkey)
    status = 0
    try:
        conn.send(("hello", index, os.getpid()))
        _, spec = conn.recv()
        worker = Worker(conn, index, spec)
        threading.Thread(target=worker.control, name="qwqrl-worker-control", daemon=True).start()
        with tempfile.TemporaryDirectory(prefix="qwqrl-worker-") as folder:
            worker.run(build_engine(spec, folder))
    except EOFError:
        pass  # the learner is gone
    except BaseException:
        status = 1
        report = traceback.format_exc()
        print(f"rollout worker {index} failed:\n{report}", file=sys.stderr)
        try:
            conn.send(("error", index, report))
        except OSError:
            pass
    finally:
        conn.close()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def main(argv: list[str] | None = None) -> None:
    """Entry point for workers a launcher starts (launch/rollout_workers.sh): one per process, or
    one per rank under torchrun, whose RANK / LOCAL_RANK give the index and the GPUs."""
    parser = argparse.ArgumentParser(description="qwqrl rollout worker (see the module docstring)")
    parser.add_argument("--learner", required=True, help="HOST:PORT of generation.remote.host/port")
    parser.add_argument("--index", type=int, default=None,
                        help="worker index 0..workers-1; default: --index-offset + $RANK")
    parser.add_argument("--index-offset", type=int, default=0,
                        help="added to $RANK: the workers on earlier nodes (one torchrun per node)")
    parser.add_argument("--gpus-per-worker", type=int, default=0,
                        help="local rank r sees GPUs r*N..r*N+N-1; 0: leave CUDA_VISIBLE_DEVICES")
    parser.add_argument("--cpus", default=None, help="comma-separated CPUs to pin to")
    args = parser.parse_args(argv)
    authkey = os.environ.get(AUTHKEY_ENV)
    if not authkey:
        raise SystemExit(f"set {AUTHKEY_ENV} to the trainer's secret (the same on both sides)")
    host, _, port = args.learner.rpartition(":")
    if not host or not port.isdigit():
        raise SystemExit(f"--learner must be HOST:PORT, got {args.learner!r}")
    index = args.index if args.index is not None else args.index_offset + int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    n = args.gpus_per_worker
    placement = Placement(cpus=[int(c) for c in args.cpus.split(",")] if args.cpus else None,
                          gpus=list(range(local * n, (local + 1) * n)) if n else None)
    serve((host, int(port)), authkey.encode(), index, placement)


if __name__ == "__main__":
    main()

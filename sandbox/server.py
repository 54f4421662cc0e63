"""The sandbox HTTP service (FastAPI + uvicorn): `python -m qwqrl.sandbox.server` or `qwqrl sandbox serve`.

Admission is bounded: at most `workers + queue` evaluations are admitted at once (a batch counts
each item); beyond that the answer is 429 with Retry-After, so clients spread load instead of
piling up. Bodies over the size limit get 413, malformed ones 422 naming the field. When a client
disconnects mid-evaluation the work is cancelled and its slot killed, so nothing keeps running.
Below the `namespaces` isolation level the server refuses to start (exit status 4) unless weak
isolation is allowed explicitly (see `isolation.py`).
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import math
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse

from qwqrl import __version__
from qwqrl.errors import UserError
from qwqrl.sandbox import isolation as iso_mod
from qwqrl.sandbox import languages
from qwqrl.sandbox.judge import STATUSES, Judge, JudgeConfig
from qwqrl.sandbox.local import REFUSED_EXIT
from qwqrl.sandbox.metrics import Metrics
from qwqrl.sandbox.models import EvaluateRequest, RunRequest
from qwqrl.sandbox.slots import SlotPool

log = logging.getLogger("qwqrl.sandbox")
DISCONNECT_POLL_S = 0.25
MAX_BATCH = 1024
IsolationTooWeak = iso_mod.IsolationTooWeak


class RequiredLevelNotMet(UserError):
    """The detected isolation level is below `--require`."""


@dataclass
class ServerConfig:
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    queue: int = 256
    require: str = "rlimits"
    allow_weak: bool = False  # below `namespaces` only with this (or $QWQRL_ALLOW_WEAK_SANDBOX=1)
    strict: bool = False
    max_body_mb: int = 64
    bwrap: bool = True
    bwrap_as_root: bool = False
    seccomp: bool = True
    cgroups: bool = True
    judge: JudgeConfig = field(default_factory=JudgeConfig)

    def __post_init__(self) -> None:
        if not 1 <= self.workers <= iso_mod.UID_BLOCK:
            raise ValueError(f"workers: expected 1..{iso_mod.UID_BLOCK}, got {self.workers}")
        if self.queue < 0:
            raise ValueError(f"queue: expected >= 0, got {self.queue}")
        iso_mod.level_rank(self.require)


class BodyLimit:
    """ASGI middleware: a POST must declare its length (411 otherwise) and stay within the
    limit (413), so an oversized body is refused before it is read."""

    def __init__(self, app: Callable, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            declared = dict(scope["headers"]).get(b"content-length", b"")
            if not declared.isdigit():
                return await _error(411, "request body: a Content-Length header is required")(scope, receive, send)
            if int(declared) > self.limit:
                return await _error(413, f"request body: over {self.limit} bytes")(scope, receive, send)
        await self.app(scope, receive, send)


class Service:
    """Everything the endpoints share: isolation, slots, judge, admission counters."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.metrics = Metrics()
        self.isolation: iso_mod.Isolation | None = None
        self.pool: SlotPool | None = None
        self.judge: Judge | None = None

    def detect(self) -> None:
        """Probe the isolation layers, log them, and refuse (IsolationTooWeak) below the required level."""
        cfg = self.config
        isolation = iso_mod.detect(cfg.bwrap, cfg.cgroups, cfg.seccomp, cfg.judge.max_memory_mb,
                                   cfg.bwrap_as_root)
        report = isolation.report()
        cgroup = report["cgroup"]
        log.warning("sandbox isolation level: %s (layers: %s; cgroup: %s)", report["level"],
                    ", ".join(f"{k}={v if isinstance(v, str) else 'yes' if v else 'no'}"
                              for k, v in report["layers"].items()),
                    f"v{cgroup['version']} ({', '.join(cgroup['controllers'])}; swap "
                    f"{'capped' if cgroup['swap_limited'] else 'not accounted'})" if cgroup else "none")
        rank = iso_mod.level_rank(report["level"])
        weak = rank < iso_mod.level_rank(iso_mod.STRONG)
        refusal: UserError | None = None
        if weak and not (cfg.allow_weak or iso_mod.weak_allowed()):
            refusal = IsolationTooWeak(iso_mod.weak_refusal(report["level"]))
        elif rank < iso_mod.level_rank(cfg.require):
            refusal = RequiredLevelNotMet(f"isolation level {report['level']!r} is below the required "
                                          f"{cfg.require!r}; layers: {report['layers']}")
        if refusal:
            isolation.close()
            raise refusal
        if weak:
            log.warning("WEAK ISOLATION, allowed explicitly: %s", iso_mod.WEAK_EXPOSURE)
        self.isolation = isolation

    async def start(self) -> None:
        cfg = self.config
        if self.isolation is None:
            self.detect()
        assert self.isolation is not None
        self.pool = SlotPool(self.isolation, cfg.workers, self.metrics, cfg.strict)
        await self.pool.start()
        self.judge = Judge(self.pool, cfg.judge, self.metrics)

    async def stop(self) -> None:
        if self.pool:
            await self.pool.stop()
        if self.isolation:
            self.isolation.close()

    def admit(self, n: int) -> bool:
        if self.metrics.inflight + n > self.config.workers + self.config.queue:
            return False
        self.metrics.inflight += n
        return True

    def retry_after_s(self) -> int:
        """A rough wait until the queue drains, from the mean run time so far."""
        mean = self.metrics.run_seconds / self.metrics.runs if self.metrics.runs else 0.1
        return max(1, math.ceil(self.metrics.inflight * mean / self.config.workers))


def _error(status: int, message: str, **headers: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers or None)


async def _until_disconnect(request: Request, work: Awaitable[Any]) -> Any:
    """Await `work`, cancelling it (and so killing its slot) if the client goes away."""
    task = asyncio.ensure_future(work)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=DISCONNECT_POLL_S)
            if done:  # plain JSON values: skip FastAPI's recursive encoder
                return JSONResponse(task.result())
            if await request.is_disconnected():
                task.cancel()
                log.info("client disconnected; cancelled its evaluation")
                return _error(499, "client disconnected")
    finally:
        if not task.done():
            task.cancel()


def create_app(config: ServerConfig) -> FastAPI:
    service = Service(config)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            await service.start()
            yield
        finally:
            await service.stop()

    app = FastAPI(title="qwqrl sandbox", version=__version__, lifespan=lifespan)
    app.state.service = service

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        detail = [{"field": ".".join(str(p) for p in e["loc"]), "problem": e["msg"]} for e in exc.errors()]
        return JSONResponse({"error": "; ".join(f"{d['field']}: {d['problem']}" for d in detail),
                             "detail": detail}, status_code=422)

    async def admitted(endpoint: str, n: int, work: Callable[[], Awaitable[Any]], request: Request) -> Any:
        if not service.admit(n):
            service.metrics.rejected[endpoint] += 1
            return _error(429, "sandbox queue is full; retry later or elsewhere",
                          **{"Retry-After": str(service.retry_after_s())})
        service.metrics.requests[endpoint] += 1
        try:
            return await _until_disconnect(request, work())
        except ValueError as e:
            return _error(422, str(e))
        finally:
            service.metrics.inflight -= n

    @app.post("/v1/run")
    async def run(body: RunRequest, request: Request) -> Any:
        return await admitted("run", 1, lambda: service.judge.run(body), request)

    @app.post("/v1/evaluate")
    async def evaluate(body: EvaluateRequest, request: Request) -> Any:
        return await admitted("evaluate", 1, lambda: service.judge.evaluate(body), request)

    @app.post("/v1/evaluate_batch")
    async def evaluate_batch(body: list[EvaluateRequest], request: Request) -> Any:
        most = min(MAX_BATCH, config.workers + config.queue)
        if len(body) > most:
            return _error(413, f"batch: at most {most} requests on this server (slots + queue), "
                               f"got {len(body)}; split it")

        async def all_of() -> list[dict]:
            return list(await asyncio.gather(*(_safe(service.judge.evaluate(r)) for r in body)))

        return await admitted("evaluate_batch", max(1, len(body)), all_of, request)

    @app.get("/healthz")
    async def healthz() -> Any:
        if service.pool is None:
            return _error(503, "starting")
        return {"ok": True, "idle_slots": service.pool.idle.qsize(), "inflight": service.metrics.inflight}

    @app.get("/v1/info")
    async def info() -> dict:
        return {"version": __version__, "languages": languages.available(),
                "statuses": list(STATUSES), "limits": config.judge.describe(),
                "isolation": service.isolation.report() if service.isolation else None,
                "workers": config.workers, "queue": config.queue, "strict": config.strict}

    @app.get("/metrics")
    async def metrics() -> PlainTextResponse:
        idle = service.pool.idle.qsize() if service.pool else 0
        return PlainTextResponse(service.metrics.render(idle, config.workers),
                                 media_type="text/plain; version=0.0.4")

    return app


async def _safe(work: Awaitable[dict]) -> dict:
    """One batch item's result; a bad item becomes an error entry, not a failed batch."""
    try:
        return await work
    except ValueError as e:
        return {"passed": 0, "total": 0, "reward": None, "status": "SE", "cases": [], "error": str(e)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="TCP port (default 8080)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="slots (default: one per core)")
    parser.add_argument("--queue", type=int, default=256, help="admitted requests beyond the slots before 429")
    parser.add_argument("--require", default="rlimits", choices=iso_mod.LEVELS,
                        help=f"refuse to start below this isolation level (below {iso_mod.STRONG} it "
                             f"also needs {iso_mod.ALLOW_WEAK_FLAG})")
    iso_mod.add_allow_weak_argument(parser)
    parser.add_argument("--strict", action="store_true", help="a fresh sandbox for every run (slower)")
    parser.add_argument("--max-time-s", type=float, default=30.0, help="largest limits.time_s accepted")
    parser.add_argument("--max-memory-mb", type=int, default=4096, help="largest limits.memory_mb accepted")
    parser.add_argument("--max-body-mb", type=int, default=64, help="largest request body (413 above)")
    parser.add_argument("--no-bwrap", action="store_true", help="do not use bubblewrap (testing weaker levels)")
    parser.add_argument("--bwrap-as-root", action="store_true",
                        help="start bwrap as root and drop to the slot uid inside (chosen automatically "
                             "where unprivileged user namespaces are refused)")
    parser.add_argument("--no-cgroups", action="store_true", help="do not use per-slot cgroups")
    parser.add_argument("--no-seccomp", action="store_true", help="do not load the seccomp filter")
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    return ServerConfig(workers=args.workers, queue=args.queue, require=args.require,
                        allow_weak=args.allow_weak_isolation, strict=args.strict,
                        max_body_mb=args.max_body_mb, bwrap=not args.no_bwrap, bwrap_as_root=args.bwrap_as_root,
                        seccomp=not args.no_seccomp,
                        cgroups=not args.no_cgroups,
                        judge=JudgeConfig(max_time_s=args.max_time_s, max_memory_mb=args.max_memory_mb))


def serve(args: argparse.Namespace) -> int:
    """Run the server until interrupted; IsolationTooWeak before serving when the isolation
    level is below the required one; 3 when uvicorn did not start."""
    import uvicorn

    config = config_from_args(args)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    fastapi_app = create_app(config)
    fastapi_app.state.service.detect()
    app = BodyLimit(fastapi_app, config.max_body_mb << 20)
    server = uvicorn.Server(uvicorn.Config(app, host=args.host, port=args.port, log_level=args.log_level,
                                           access_log=False, lifespan="on", timeout_graceful_shutdown=5))
    server.run()
    return 0 if server.started else 3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m qwqrl.sandbox.server", description=__doc__.splitlines()[0])
    add_arguments(parser)
    try:
        return serve(parser.parse_args(argv))
    except ValueError as e:
        parser.error(str(e))
        return 2
    except (IsolationTooWeak, RequiredLevelNotMet) as e:
        print(f"error: {e}", file=sys.stderr)
        return REFUSED_EXIT if isinstance(e, IsolationTooWeak) else 2


if __name__ == "__main__":
    raise SystemExit(main())

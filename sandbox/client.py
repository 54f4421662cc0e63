"""Async client for a fleet of sandbox replicas (used by the code verifier and `qwqrl score`).

Balancing: each request goes to the healthy replica with the fewest outstanding requests.
A replica that refuses connections or times out is ejected for a while (`eject_s`, doubling up
to 6x while it stays down) and re-admitted as soon as its /healthz answers again, so a replica
restarted on the same address takes work again within `eject_s` of being probed. A crash fails
every request in flight on the replica at once: that counts as one failure, not one per request. Retries: evaluation is a pure function of the request, so retrying
on another replica is safe after connection errors, timeouts, 5xx, 429 (after Retry-After) and
SE results; a 4xx is the caller's mistake and is not retried. A request that still fails comes
back as a result with status "SE" and an "error" string (reward None), never as an exception,
so the trainer can mask that one sample.
"""
from __future__ import annotations

import asyncio
import os
import random
import threading
import time
from dataclasses import dataclass

import httpx

EJECT_S = 5.0
HEALTH_TIMEOUT_S = 2.0
MAX_RETRY_AFTER_S = 10.0
MAX_EJECTED_WAIT_S = 1.0
BATCH_CONCURRENCY = 256


@dataclass
class Replica:
    url: str
    outstanding: int = 0
    ejected_until: float = 0.0
    failures: int = 0


def se_result(error: str) -> dict:
    return {"passed": 0, "total": 0, "reward": None, "status": "SE", "cases": [], "error": error}


def env_urls() -> list[str]:
    """The replicas listed in $QWQRL_SANDBOX_URL (comma-separated), or none."""
    return [u.strip() for u in os.environ.get("QWQRL_SANDBOX_URL", "").split(",") if u.strip()]


class SandboxClient:
    def __init__(self, urls: list[str], timeout_s: float = 300.0, max_retries: int = 4,
                 eject_s: float = EJECT_S) -> None:
        if not urls:
            raise ValueError("SandboxClient: expected at least one replica URL")
        self.replicas = [Replica(u.rstrip("/")) for u in urls]
        self.timeout_s, self.max_retries, self.eject_s = timeout_s, max_retries, eject_s
        # One HTTP client per thread: an httpx.AsyncClient belongs to the event loop it was made
        # in, and `evaluate_many` runs an event loop of its own in each calling thread (the
        # trainer scores groups from several threads at once). Shared, one thread's client was
        # handed to, or closed under, another's loop, which hung that request to its timeout.
        self._local = threading.local()

    @classmethod
    def from_env(cls, **kwargs: float) -> SandboxClient:
        """Replicas from $QWQRL_SANDBOX_URL (comma-separated)."""
        urls = env_urls()
        if not urls:
            raise ValueError("QWQRL_SANDBOX_URL is not set (expected comma-separated sandbox URLs)")
        return cls(urls, **kwargs)

    def _client(self) -> httpx.AsyncClient:
        """This thread's client, made anew when the thread runs a different event loop."""
        loop, local = asyncio.get_running_loop(), self._local
        if getattr(local, "http", None) is None or local.loop is not loop:
            limits = httpx.Limits(max_connections=None, max_keepalive_connections=BATCH_CONCURRENCY)
            local.http = httpx.AsyncClient(timeout=self.timeout_s, limits=limits, trust_env=False)
            local.loop = loop
        return local.http

    async def aclose(self) -> None:
        """Close this thread's client (other threads' stay open)."""
        http, self._local.http = getattr(self._local, "http", None), None
        if http is not None:
            await http.aclose()

    async def _pick(self, avoid: Replica | None) -> Replica:
        """The least-loaded live replica (not `avoid` when another exists). When every replica is
        ejected, wait (briefly) for the first ejection to expire and return that one to be probed."""
        now = time.monotonic()
        live = [r for r in self.replicas if r.ejected_until <= now]
        if not live:
            soonest = min(self.replicas, key=lambda r: r.ejected_until)
            await asyncio.sleep(min(soonest.ejected_until - now, MAX_EJECTED_WAIT_S))
            return soonest
        choices = [r for r in live if r is not avoid] or live
        least = min(r.outstanding for r in choices)
        return random.choice([r for r in choices if r.outstanding == least])

    async def _probe(self, replica: Replica) -> None:
        try:
            resp = await self._client().get(f"{replica.url}/healthz", timeout=HEALTH_TIMEOUT_S)
            healthy = resp.status_code == 200
        except httpx.HTTPError:
            healthy = False
        if healthy:
            replica.ejected_until = 0.0
        else:
            self._eject(replica)

    def _eject(self, replica: Replica) -> None:
        """Eject for `eject_s` x consecutive failures (at most 6x). Failures while already
        ejected are the same outage (requests that were in flight when it went down)."""
        now = time.monotonic()
        if replica.ejected_until > now:
            return
        replica.failures += 1
        replica.ejected_until = now + self.eject_s * min(replica.failures, 6)

    async def _post(self, path: str, body: object) -> dict:
        """POST with balancing and safe retries; an SE result (never an exception) when all fail.

        Failures (connection errors, timeouts, 5xx, SE results) use up `max_retries`; a 429 does
        not (overload is not failure): it waits Retry-After, within `timeout_s` overall."""
        deadline = time.monotonic() + self.timeout_s
        error, last, failures = "no attempt made", None, 0
        while failures <= self.max_retries and time.monotonic() < deadline:
            replica = await self._pick(avoid=last)
            last = replica
            if replica.ejected_until:  # it was ejected: re-admit only after /healthz answers
                await self._probe(replica)
                if replica.ejected_until:
                    error, failures = f"{replica.url} is unhealthy", failures + 1
                    continue
            replica.outstanding += 1
            try:
                resp = await self._client().post(f"{replica.url}{path}", json=body)
                result = resp.json() if resp.status_code < 300 else None
            except (httpx.HTTPError, ValueError) as e:
                self._eject(replica)
                error, failures = f"{replica.url}: {type(e).__name__}: {e}", failures + 1
                continue
            finally:
                replica.outstanding -= 1
            if resp.status_code == 429:
                error = f"{replica.url} is overloaded"
                delay = min(float(resp.headers.get("Retry-After") or 1), MAX_RETRY_AFTER_S)
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))
                continue
            if resp.status_code >= 500:
                self._eject(replica)
                error, failures = f"{replica.url}: HTTP {resp.status_code}", failures + 1
                continue
            replica.failures = 0
            if result is None:
                return se_result(f"{replica.url} rejected the request (HTTP {resp.status_code}): "
                                 f"{_error_text(resp)}")
            if result.get("status") != "SE":
                return result
            error, failures = f"{replica.url}: sandbox error: {result.get('error', '')}", failures + 1
        return se_result(f"gave up after {failures} failed attempts; last: {error}")

    async def run(self, request: dict) -> dict:
        """POST /v1/run (one program, no tests)."""
        return await self._post("/v1/run", request)

    async def evaluate(self, request: dict) -> dict:
        return await self._post("/v1/evaluate", request)

    async def evaluate_batch(self, requests: list[dict]) -> list[dict]:
        """Results in order; each request is balanced (and retried) on its own."""
        gate = asyncio.Semaphore(BATCH_CONCURRENCY)

        async def one(request: dict) -> dict:
            async with gate:
                return await self.evaluate(request)

        return list(await asyncio.gather(*(one(r) for r in requests)))

    def evaluate_many(self, requests: list[dict]) -> list[dict]:
        """Synchronous `evaluate_batch` for callers without a running event loop (e.g. a thread)."""
        async def batch() -> list[dict]:
            try:
                return await self.evaluate_batch(requests)
            finally:
                await self.aclose()

        return asyncio.run(batch())


def _error_text(resp: httpx.Response) -> str:
    try:
        return str(resp.json().get("error", resp.text))[:1000]
    except ValueError:
        return resp.text[:1000]

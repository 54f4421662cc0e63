"""Judging: turn a request into sandbox jobs, and the jobs' raw outcomes into verdicts.

Verdicts: OK, WA, RE, TLE (CPU time, with a wall-clock backstop), MLE, OLE, CE, and SE when the
sandbox itself failed. SE is never a reward of 0: the evaluation's reward is None so the client
retries elsewhere and the trainer masks the sample. Outputs are compared here, on the host:
stdio line by line (trailing whitespace and trailing blank lines ignored, optional float
tolerance); `call` results arrive as JSON behind a per-run nonce and are compared as values, so
the program's own `__eq__` never takes part; an `assert` case passes only when the harness
reaches its nonce line after the asserts, so exiting early (even with status 0) fails.
"""
from __future__ import annotations

import json
import math
import secrets
import signal
from dataclasses import dataclass
from typing import Any

from qwqrl.sandbox import languages
from qwqrl.sandbox.languages import Language
from qwqrl.sandbox.metrics import Metrics
from qwqrl.sandbox.models import EvaluateRequest, Limits, RunRequest
from qwqrl.sandbox.slots import SlotFault, SlotPool

STATUSES = ("OK", "WA", "RE", "TLE", "MLE", "OLE", "CE", "SE")
MESSAGE_CHARS = 2000


@dataclass
class JudgeConfig:
    max_time_s: float = 30.0
    max_memory_mb: int = 4096
    output_mb: int = 32
    nproc: int = 64
    nofile: int = 256
    compile_time_s: float = 20.0
    compile_memory_mb: int = 2048

    def describe(self) -> dict:
        return {"default": Limits().model_dump(), "max_time_s": self.max_time_s,
                "max_memory_mb": self.max_memory_mb, "output_mb": self.output_mb,
                "processes": self.nproc, "open_files": self.nofile,
                "compile_time_s": self.compile_time_s, "compile_memory_mb": self.compile_memory_mb}


def run_status(header: dict, time_s: float, output_cap: int) -> str:
    """Status of one finished job before any output comparison."""
    sig, stderr = header["signal"], header["stderr"]
    if header.get("compiled") is False:
        return "CE"
    if header["wall_killed"] or sig == signal.SIGXCPU or header["cpu_ms"] > time_s * 1000:
        return "TLE"
    if sig == signal.SIGXFSZ or header["stdout_size"] >= output_cap or header["stderr_size"] >= output_cap:
        return "OLE"
    if header.get("oom_killed") or sig == signal.SIGKILL or "MemoryError" in stderr or "std::bad_alloc" in stderr:
        return "MLE"
    if header["exit_code"] != 0 or sig is not None:
        return "RE"
    return "OK"


def _lines(text: str) -> list[str]:
    lines = [line.rstrip() for line in text.split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def _tokens_match(got: str, want: str, tol: float) -> bool:
    a, b = got.split(), want.split()
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if x == y:
            continue
        try:
            if not math.isclose(float(x), float(y), rel_tol=tol, abs_tol=tol):
                return False
        except ValueError:
            return False
    return True


def stdio_matches(got: str, want: str, float_tolerance: float | None = None) -> bool:
    """Line by line after stripping trailing whitespace; extra or missing lines fail."""
    a, b = _lines(got), _lines(want)
    if len(a) != len(b):
        return False
    return all(x == y or (float_tolerance is not None and _tokens_match(x, y, float_tolerance))
               for x, y in zip(a, b))


def values_match(got: Any, want: Any, tol: float | None = None) -> bool:
    """JSON values equal (bools are not numbers; numbers within `tol` when given)."""
    if isinstance(got, bool) or isinstance(want, bool):
        return type(got) is type(want) and got == want
    if isinstance(got, (int, float)) and isinstance(want, (int, float)):
        return got == want if tol is None else math.isclose(got, want, rel_tol=tol, abs_tol=tol)
    if isinstance(got, list) and isinstance(want, list):
        return len(got) == len(want) and all(values_match(x, y, tol) for x, y in zip(got, want))
    if isinstance(got, dict) and isinstance(want, dict):
        return got.keys() == want.keys() and all(values_match(got[k], want[k], tol) for k in got)
    return type(got) is type(want) and got == want


def harness_line(stdout: str, nonce: str) -> str | None:
    """The harness's verdict line (the last one carrying this run's nonce), if it was reached."""
    at = stdout.rfind("\n" + nonce)
    if at < 0:
        return None
    return stdout[at + 1 + len(nonce):].split("\n", 1)[0]


def _case(status: str, header: dict | None = None, message: str = "") -> dict:
    case: dict[str, Any] = {"status": status}
    if header:
        case.update(cpu_ms=header["cpu_ms"], wall_ms=header["wall_ms"],
                    max_rss_mb=round(header["max_rss_kb"] / 1024, 1))
        if status != "OK" and not message:
            message = header["stderr"][-MESSAGE_CHARS:]
    if message:
        case["message"] = message[-MESSAGE_CHARS:]
    return case


class Judge:
    def __init__(self, pool: SlotPool, config: JudgeConfig, metrics: Metrics) -> None:
        self.pool, self.config, self.metrics = pool, config, metrics
        self.output_cap = config.output_mb << 20

    def check_limits(self, limits: Limits) -> None:
        """ValueError naming the field when a request asks for more than this server allows."""
        if limits.time_s > self.config.max_time_s:
            raise ValueError(f"limits.time_s: at most {self.config.max_time_s} on this server, got {limits.time_s}")
        if limits.memory_mb > self.config.max_memory_mb:
            raise ValueError(f"limits.memory_mb: at most {self.config.max_memory_mb} on this server, "
                             f"got {limits.memory_mb}")

    def _job(self, kind: str, time_s: float, memory_mb: int, **fields: Any) -> dict:
        return {"kind": kind, "time_s": time_s, "wall_s": 2 * time_s + 1, "memory_mb": memory_mb,
                "output_bytes": self.output_cap, "nproc": self.config.nproc,
                "nofile": self.config.nofile, **fields}

    async def _compile(self, lang: Language, code: str) -> tuple[bytes, dict | None]:
        """The artifact, or an empty one and the failing compile's header (a CE)."""
        job = self._job("compile", self.config.compile_time_s, self.config.compile_memory_mb,
                        argv=list(lang.compile_argv or ()), files={lang.source: code},
                        artifact=lang.artifact, output_bytes=max(self.output_cap, 256 << 20))
        header, blob = await self.pool.run(job)
        if header["exit_code"] == 0 and blob:
            return blob, None
        if header["wall_killed"] or header["signal"] == signal.SIGXCPU:
            header["stderr"] = "compilation timed out\n" + header["stderr"]
        return b"", header

    async def _execute(self, lang: Language, code: str, artifact: bytes, limits: Limits,
                       stdin: str = "", **harness: Any) -> tuple[str, dict, str]:
        """Run once; (status before comparison, raw header, stdout text)."""
        if lang.runtime == "python":
            job = self._job("python", limits.time_s, limits.memory_mb, code=code, stdin=stdin, **harness)
        else:
            job = self._job("exec", limits.time_s, limits.memory_mb, argv=[lang.artifact], stdin=stdin)
        header, out = await self.pool.run(job, artifact)
        return run_status(header, limits.time_s, self.output_cap), header, out.decode("utf-8", "replace")

    async def run(self, req: RunRequest) -> dict:
        self.check_limits(req.limits)
        lang = languages.resolve(req.language)
        result: dict[str, Any] = {"status": "SE", "exit_code": None, "stdout": "", "stderr": "",
                                  "cpu_ms": 0.0, "wall_ms": 0.0, "max_rss_mb": 0.0}
        try:
            artifact, failed = (await self._compile(lang, req.code)) if lang.compile_argv else (b"", None)
            if failed:
                header, status, stdout = failed, "CE", ""
            else:
                status, header, stdout = await self._execute(lang, req.code, artifact, req.limits,
                                                             req.stdin, mode="plain", nonce="")
        except SlotFault as e:
            result["error"] = str(e)
            return result
        result.update(status=status, exit_code=header["exit_code"], stdout=stdout, stderr=header["stderr"],
                      cpu_ms=header["cpu_ms"], wall_ms=header["wall_ms"],
                      max_rss_mb=round(header["max_rss_kb"] / 1024, 1))
        return result

    async def evaluate(self, req: EvaluateRequest) -> dict:
        self.check_limits(req.limits)
        lang = languages.resolve(req.language)
        tests = req.tests
        if tests.type == "assert" and lang.runtime != "python":
            raise ValueError(f"tests.type: 'assert' tests need a Python submission, got language {req.language!r}")
        total = len(tests.asserts) if tests.type == "assert" else len(tests.cases)
        cases: list[dict] = []
        try:
            artifact, failed = (await self._compile(lang, req.code)) if lang.compile_argv else (b"", None)
            if failed:
                cases = [_case("CE", message=failed["stderr"])]
            for index in range(total if not failed else 0):
                case = await self._judge_case(lang, req, artifact, index)
                cases.append(case)
                # After a time-out the program is taken to hang on every case: the rest count as
                # failed without running, so a record costs at most one case's wall limit.
                if case["status"] in ("CE", "TLE") or (req.stop_on_first_fail and case["status"] != "OK"):
                    break
        except SlotFault as e:
            self.metrics.verdicts["SE"] += 1
            return {"passed": 0, "total": total, "reward": None, "status": "SE", "cases": cases,
                    "error": str(e)}
        for case in cases:
            self.metrics.verdicts[case["status"]] += 1
        passed = sum(case["status"] == "OK" for case in cases)
        if passed == total:
            reward = 1.0
        else:
            reward = 0.0 if req.all_or_nothing else passed / total
        status = next((c["status"] for c in cases if c["status"] != "OK"), "OK")
        return {"passed": passed, "total": total, "reward": reward, "status": status, "cases": cases}

    async def _judge_case(self, lang: Language, req: EvaluateRequest, artifact: bytes, index: int) -> dict:
        tests, nonce = req.tests, secrets.token_hex(16)
        if tests.type == "stdio":
            case = tests.cases[index]
            status, header, stdout = await self._execute(lang, req.code, artifact, req.limits, case.input,
                                                         mode="plain", nonce="")
            if status == "OK" and not stdio_matches(stdout, case.output, tests.float_tolerance):
                return _case("WA", header, "output differs from the expected output")
            return _case(status, header)
        if tests.type == "call":
            case = tests.cases[index]
            status, header, stdout = await self._execute(lang, req.code, artifact, req.limits, mode="call",
                                                         nonce=nonce, fn_name=tests.fn_name, args=case.args)
            if status != "OK":
                return _case(status, header)
            line = harness_line(stdout, nonce)
            if line is None:
                return _case("WA", header, "the program exited before returning a result")
            try:
                got = json.loads(line)
            except ValueError:
                return _case("WA", header, "the harness line is not JSON")
            want = case.expected
            if values_match(got, want, tests.float_tolerance) or (
                    isinstance(want, list) and len(want) == 1 and values_match(got, want[0], tests.float_tolerance)):
                return _case("OK", header)
            return _case("WA", header, f"returned {line[:200]}")
        status, header, stdout = await self._execute(lang, req.code, artifact, req.limits, mode="assert",
                                                     nonce=nonce, assert_src=tests.asserts[index])
        if status == "RE" and "AssertionError" in header["stderr"]:
            return _case("WA", header)
        if status == "OK" and harness_line(stdout, nonce) != "PASS":
            return _case("WA", header, "the program exited before the asserts ran")
        return _case(status, header)

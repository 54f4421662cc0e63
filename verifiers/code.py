"""Code verifier: run the program in the final answer against the record's tests in the sandbox.

The program is the last fenced code block after the last `</think>` (```python, ```cpp or a bare
```), in the record's `language` (default python). The score is the sandbox's reward (the
fraction of test cases passed, as the sandbox defines it); `detail` carries `status`, `passed`
and `total`. With `all_or_nothing` the request asks the sandbox for it (`all_or_nothing`, and
`stop_on_first_fail`: once a test fails the rest cannot change a 0), so the score is 1 or 0.
`timeout_s` is the per-test CPU limit (`limits.time_s`) of records that set no `limits`.
Two outcomes are never a wrong answer:
- no code block: score 0, status NO_CODE (an unfinished completion is NO_CODE too, with
  `reason: unfinished`);
- SE (sandbox error; the client returns it, never raises, once its retries on other replicas
  are spent) or a record whose tests are malformed: score None with the error, so the trainer
  masks the sample instead of learning from an outage.

Sandbox: pass `client=` (a `qwqrl.sandbox.client.SandboxClient`), or `urls=`, or set
$QWQRL_SANDBOX_URL.
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from qwqrl.verifiers.base import Verdict, completion_text, final_answer
from qwqrl.verifiers.reward_fn import reward_function

_FENCE = re.compile(r"```[^\n`]*\n(.*?)```", re.DOTALL)


def extract_program(answer: str) -> str | None:
    """The last fenced code block's contents, or None if the answer has no closed block."""
    blocks = _FENCE.findall(answer)
    return blocks[-1] if blocks and blocks[-1].strip() else None


def _verdict(score: float | None, status: str, passed: int = 0, total: int = 0,
             error: str | None = None, **extra: Any) -> Verdict:
    detail = {"verifier": "code", "status": status, "passed": passed, "total": total, **extra}
    return Verdict(score, detail, error)


def _from_result(result: Mapping[str, Any]) -> Verdict:
    status = result.get("status", "SE")
    passed, total = result.get("passed", 0), result.get("total", 0)
    if status == "SE":
        return _verdict(None, status, passed, total, error=result.get("error") or "sandbox error")
    return _verdict(float(result["reward"]), status, passed, total)


def _request(record: Mapping[str, Any], program: str, all_or_nothing: bool,
             timeout_s: float | None) -> dict:
    from qwqrl.sandbox.requests import request_from_record

    if timeout_s is not None and not record.get("limits"):  # limits inside `tests` still win
        record = {**record, "limits": {"time_s": timeout_s}}
    request = request_from_record(record, program)
    if all_or_nothing:
        request.update(all_or_nothing=True, stop_on_first_fail=True)
    return request


def _requests(records: Sequence[Mapping[str, Any]], think_opened: bool, all_or_nothing: bool,
              timeout_s: float | None) -> tuple[list[Verdict | None], list[tuple[int, dict]]]:
    """Verdicts settled without running anything, and the sandbox requests for the rest."""
    verdicts: list[Verdict | None] = []
    requests: list[tuple[int, dict]] = []
    for i, record in enumerate(records):
        verdict: Verdict | None = None
        if record.get("completion") is None:
            verdict = _verdict(None, "SE", error="record has no 'completion'")
        else:
            answer = final_answer(completion_text(record["completion"]), think_opened)
            program = extract_program(answer) if answer is not None else None
            if program is None:
                extra = {} if answer is not None else {"reason": "unfinished"}
                verdict = _verdict(0.0, "NO_CODE", **extra)
            else:
                try:
                    requests.append((i, _request(record, program, all_or_nothing, timeout_s)))
                except (KeyError, TypeError, ValueError) as e:  # bad tests in the record
                    verdict = _verdict(None, "SE", error=f"cannot build the request: {e}")
        verdicts.append(verdict)
    return verdicts, requests


def _merge(verdicts: list[Verdict | None], requests: list[tuple[int, dict]],
           results: list[Mapping[str, Any]]) -> list[Verdict]:
    for (i, _), result in zip(requests, results, strict=True):
        verdicts[i] = _from_result(result)
    return verdicts  # type: ignore[return-value]  # every slot is filled


def _client(client: Any, urls: Sequence[str]) -> Any:
    if client is not None:
        return client
    from qwqrl.sandbox.client import SandboxClient

    return SandboxClient(list(urls)) if urls else SandboxClient.from_env()


def verify_batch(records: Sequence[Mapping[str, Any]], *, client: Any = None,
                 think_opened: bool = True, all_or_nothing: bool = False,
                 timeout_s: float | None = None, urls: Sequence[str] = ()) -> list[Verdict]:
    verdicts, requests = _requests(records, think_opened, all_or_nothing, timeout_s)
    results = _client(client, urls).evaluate_many([r for _, r in requests]) if requests else []
    return _merge(verdicts, requests, results)


async def averify_batch(records: Sequence[Mapping[str, Any]], *, client: Any = None,
                        think_opened: bool = True, all_or_nothing: bool = False,
                        timeout_s: float | None = None, urls: Sequence[str] = ()) -> list[Verdict]:
    verdicts, requests = _requests(records, think_opened, all_or_nothing, timeout_s)
    results = (await _client(client, urls).evaluate_batch([r for _, r in requests])
               if requests else [])
    return _merge(verdicts, requests, results)


def verify(record: Mapping[str, Any], **options: Any) -> Verdict:
    return verify_batch([record], **options)[0]


code_reward = reward_function(verify_batch, "code_reward")

"""Math accuracy verifier: 1.0 when the final answer equals the gold, else 0.0.

math-verify (in worker processes) judges equivalence; this layer adds the policy an RL reward
needs (see `math_answer.py` for the rules on which text is judged and what counts as hedging, and
`math_equivalence.py` for what is added on top of math-verify). Every record has a hard wall-clock
limit enforced from outside its worker (`pool.py`): an answer that would make sympy run for
hours scores 0 when the limit passes, and the worker is replaced.

Outcomes, in `Verdict.detail`: `verifier` ("math"), `extracted` (the answer judged) and, when
the answer was not compared, `reason`: unfinished, hedged, too_complex or timeout (all score 0).
A record that cannot be judged (no gold, a gold math-verify finds nothing in, a worker that
died) gets score None with an error: the trainer masks it instead of teaching "wrong".

Workers: one per available core, or $QWQRL_MATH_WORKERS (e.g. to share a node between several
trainer ranks). They start at the first batch that needs sympy and stay for the process's life.

    verify_batch([{"answer": "17", "completion": "...</think> The answer is $\\boxed{17}$."}])
"""
from __future__ import annotations

import asyncio
import atexit
import os
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from fractions import Fraction
from typing import Any

from qwqrl.verifiers.base import Verdict, completion_text, final_answer
from qwqrl.verifiers.math_answer import (
    MAX_CANDIDATES, MathJob, as_number, boxed_contents, gold_answer, hedges, mc_gold_letter,
    mc_letters, normalize, several_values, stated_answer, stated_number, too_complex,
)
from qwqrl.verifiers.pool import DeadlinePool, Outcome
from qwqrl.verifiers.reward_fn import reward_function

DEFAULT_TIMEOUT_S = 5.0
# Address-space cap per worker: an answer that makes sympy allocate without end fails with
# MemoryError (a 0) inside its worker instead of pushing the host into swap before its deadline.
WORKER_MEMORY_MB = 4096
_JUDGE = "qwqrl.verifiers.math_equivalence:judge"
_pool: DeadlinePool | None = None
_pool_lock = threading.Lock()


def pool() -> DeadlinePool:
    """The process-wide worker pool, started on first use (one worker per available core)."""
    global _pool
    with _pool_lock:
        # A forked child needs its own workers; a closed pool is replaced.
        if _pool is None or _pool.pid != os.getpid() or _pool.closed:
            workers = int(os.environ.get("QWQRL_MATH_WORKERS", "0")) or None
            _pool = DeadlinePool(_JUDGE, processes=workers, memory_mb=WORKER_MEMORY_MB)
            atexit.register(_pool.close)
        return _pool


def _verdict(score: float | None, extracted: str | None, reason: str | None = None,
             error: str | None = None) -> Verdict:
    detail: dict[str, Any] = {"verifier": "math", "extracted": extracted}
    if reason is not None:
        detail["reason"] = reason
    return Verdict(score, detail, error)


def _compare_numbers(gold: Fraction, answers: set[Fraction], extracted: str) -> Verdict | None:
    """Literal numbers against a literal gold: exact. None where math-verify's float rounding
    must decide (a non-integer gold that no answer equals exactly, e.g. 1/3 vs 0.333333)."""
    if answers == {gold}:
        return _verdict(1.0, extracted)
    if gold.denominator == 1:  # integers: no tolerance
        return _verdict(0.0, extracted, "hedged" if len(answers) > 1 else None)
    return None


def prepare(gold: str, completion: str, think_opened: bool = True) -> Verdict | MathJob:
    """Apply the policy; return a Verdict when no sympy is needed, else the job for a worker."""
    region = final_answer(completion, think_opened)
    if region is None:
        return _verdict(0.0, None, "unfinished")
    gold = gold_answer(gold)
    if not gold:
        return _verdict(None, None, error="the gold answer is empty")
    letter = mc_gold_letter(gold)
    if letter is not None:
        letters = sorted(set(mc_letters(region)))
        if len(letters) > 1 or hedges(stated_answer(region), gold):
            return _verdict(0.0, " | ".join(letters), "hedged")
        return _verdict(float(letters == [letter]), letters[0] if letters else None)
    candidates = list(dict.fromkeys(boxed_contents(region)))
    if len(candidates) > 1 and several_values(gold):  # "\boxed{1} and \boxed{2}" for {1, 2}
        candidates = [", ".join(candidates)]
    statement = " | ".join(candidates) if candidates else stated_answer(region)
    if hedges(statement, gold) or len(candidates) > MAX_CANDIDATES:
        return _verdict(0.0, statement[:200], "hedged")
    if any(too_complex(c) for c in candidates):
        return _verdict(0.0, statement[:200], "too_complex")
    gold_number = as_number(gold)
    if candidates:
        numbers = {as_number(c) for c in candidates}
        if gold_number is not None and None not in numbers:
            verdict = _compare_numbers(gold_number, numbers, statement)
            if verdict is not None:
                return verdict
        elif {normalize(c) for c in candidates} == {normalize(gold)}:
            return _verdict(1.0, statement)
        return MathJob(gold, tuple(candidates))
    stated = stated_number(statement)
    if gold_number is not None and stated is not None:
        verdict = _compare_numbers(gold_number, {stated}, statement)
        if verdict is not None:
            return verdict
    return MathJob(gold, (), region)


def _from_outcome(future: Future, job: MathJob) -> Verdict:
    try:
        outcome: Outcome = future.result()
    except RuntimeError as e:  # the pool could not run the task at all
        return _verdict(None, None, error=str(e))
    if outcome.timed_out:
        return _verdict(0.0, " | ".join(job.candidates) or None, "timeout")
    if outcome.error is not None:
        return _verdict(None, None, error=f"math worker: {outcome.error}")
    score, extracted, error = outcome.value
    return _verdict(score, extracted, error=error)


def _inputs(record: Mapping[str, Any]) -> tuple[str, str] | Verdict:
    gold, completion = record.get("answer"), record.get("completion")
    if not isinstance(gold, str | int | float) or isinstance(gold, bool) or str(gold).strip() == "":
        return _verdict(None, None, error="record has no gold 'answer' (a string or a number)")
    if completion is None:
        return _verdict(None, None, error="record has no 'completion'")
    try:
        return str(gold), completion_text(completion)
    except TypeError as e:
        return _verdict(None, None, error=str(e))


def verify_batch(records: Sequence[Mapping[str, Any]], *, think_opened: bool = True,
                 timeout_s: float = DEFAULT_TIMEOUT_S) -> list[Verdict]:
    """Judge records carrying `answer` and `completion`, in order, spread over all cores."""
    verdicts: list[Verdict | None] = []
    jobs: list[tuple[int, MathJob]] = []
    for i, record in enumerate(records):
        inputs = _inputs(record)
        prepared = inputs if isinstance(inputs, Verdict) else prepare(*inputs, think_opened)
        if isinstance(prepared, MathJob):
            jobs.append((i, prepared))
        verdicts.append(prepared if isinstance(prepared, Verdict) else None)
    if jobs:  # the G samples of a prompt often repeat an answer: each job is judged once
        unique = list(dict.fromkeys(job for _, job in jobs))
        futures = dict(zip(unique, pool().submit(unique, timeout_s)))
        for i, job in jobs:
            verdicts[i] = _from_outcome(futures[job], job)
    return verdicts  # type: ignore[return-value]  # every slot is filled above


async def averify_batch(records: Sequence[Mapping[str, Any]], **options: Any) -> list[Verdict]:
    """`verify_batch` for async callers: the event loop keeps running while workers judge."""
    return await asyncio.to_thread(verify_batch, records, **options)


def verify(record: Mapping[str, Any], **options: Any) -> Verdict:
    return verify_batch([record], **options)[0]


math_reward = reward_function(verify_batch, "math_reward")

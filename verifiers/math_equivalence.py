"""The sympy half of the math verifier: is a candidate answer equal to the gold? Runs in workers.

math-verify parses and compares; this module only adds the rules it does not have:
- a single-valued gold is not matched by a set, tuple or interval of several values (a list
  offered in place of one answer is a hedge), even if the list contains the gold;
- an integer gold is matched only exactly (math-verify rounds floats to 6 places, so
  `17.0000000001` would otherwise pass for `17`);
- every boxed candidate must be correct: restating one answer in another form is fine,
  offering two different ones is not;
- an inequality in one variable (`-\\infty < x < 3`, `x \\le 2`, `x \\in (2, 5]`) and an interval
  (`(-\\infty, 3)`, `(-\\infty, 2]`) are compared as the sets they describe, either way round, so
  an open end never matches a closed one (math-verify matches them only in some directions).

math-verify's own timeouts use SIGALRM and are switched off: the pool in `verifiers/pool.py`
enforces the deadline from outside the worker, which also covers what SIGALRM cannot interrupt.
"""
from __future__ import annotations

import functools
import logging
from typing import Any

import sympy
from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

from qwqrl.verifiers.math_answer import MathJob

logging.getLogger("math_verify").setLevel(logging.ERROR)

_LATEX = [LatexExtractionConfig(boxed_match_priority=0), ExprExtractionConfig()]
_COLLECTIONS = (sympy.Set, sympy.Tuple, sympy.MatrixBase, list, tuple)


@functools.lru_cache(maxsize=4096)
def _parse_cached(text: str) -> tuple[Any, ...]:
    return tuple(parse(text, extraction_config=_LATEX, parsing_timeout=None))


def parse_answer(text: str) -> list[Any]:
    """math-verify's parse, cached: in RL every prompt's gold comes back with each of its G
    samples, and the same few candidate answers recur (sympy objects are immutable)."""
    return list(_parse_cached(text))


def _is_single_value(expr: Any) -> bool:
    return isinstance(expr, sympy.Expr) and not isinstance(expr, _COLLECTIONS)


def _size(expr: Any) -> int:
    if isinstance(expr, sympy.FiniteSet | sympy.Tuple):
        return len(expr.args)
    return 1 if _is_single_value(expr) else 2  # intervals, unions, matrices: several values


def _as_set(expr: Any) -> sympy.Set | None:
    """The set of real values an inequality (or `x \\in S`) in exactly one variable allows;
    None for anything else."""
    if isinstance(expr, sympy.Eq) and isinstance(expr.lhs, sympy.Symbol) and isinstance(expr.rhs, sympy.Set):
        return expr.rhs  # `x \\in (2, 5]` parses as Eq(x, Interval)
    if not isinstance(expr, sympy.Rel | sympy.And | sympy.Or) or isinstance(expr, sympy.Eq | sympy.Ne):
        return None
    if len(expr.free_symbols) != 1:
        return None
    try:
        return expr.as_set()
    except (NotImplementedError, TypeError, ValueError):
        return None


def _same_set(g: Any, p: Any) -> bool | None:
    """Set equality when one side is an interval (or union) and the other an inequality in one
    variable; None when the pair is not of that kind (math-verify decides then)."""
    sets = (sympy.Interval, sympy.Union)
    if isinstance(g, sets) and (other := _as_set(p)) is not None:
        return bool(sympy.SymmetricDifference(g, other).is_empty)
    if isinstance(p, sets) and (other := _as_set(g)) is not None:
        return bool(sympy.SymmetricDifference(p, other).is_empty)
    return None


def equivalent(gold: list[Any], pred: list[Any]) -> bool:
    if not pred:
        return False
    g, p = gold[0], pred[0]
    same = _same_set(g, p)
    if same is not None:
        return same
    if _is_single_value(g) and not isinstance(p, str | sympy.Rel) and _size(p) != 1:
        return False
    if isinstance(g, sympy.Integer) and isinstance(p, sympy.Number):
        return sympy.Rational(p) == g
    return verify(gold, pred, timeout_seconds=None)


def judge(job: MathJob) -> tuple[float | None, str | None, str | None]:
    """(score, extracted answer, error) for one job; the score is None only with an error."""
    gold = parse_answer(f"$\\boxed{{{job.gold}}}$")
    if not gold:
        return None, None, f"the gold answer {job.gold!r} could not be parsed"
    if job.region is not None:
        pred = parse_answer(job.region)
        extracted = str(pred[-1]) if pred else None
        return float(equivalent(gold, pred)), extracted, None
    correct = all(equivalent(gold, parse_answer(f"$\\boxed{{{c}}}$")) for c in job.candidates)
    return float(correct), " | ".join(job.candidates), None

# Run once when a worker starts, so the first real task does not pay for sympy's and
# math-verify's lazy imports and regex compilation.
WARMUP = MathJob(gold="\\frac{1}{2}", candidates=("0.5",))

"""IFEval verdicts and the TRL reward: the fraction of a record's instructions the answer follows.

A record is in the official input format: `instruction_id_list` and `kwargs`, a list of dicts
aligned with the ids (None-valued kwargs are dropped, as the official eval does for the
HF-datasets copy of IFEval). Only the final answer is judged (the text after `</think>`); an
unfinished reasoning trace scores 0. The score is the strict judgement, or with `mode="loose"`
the loose one (the official upper bound: also try the answer without its first line, its last
line or both, each with and without `*`); the detail carries both.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from ..base import Verdict, completion_text, final_answer
from .registry import Check, InstructionError, bind

VERIFIER = "ifeval"


def build_checks(record: Mapping[str, Any]) -> list[Check]:
    """One bound check per instruction of `record`; InstructionError if it cannot be judged."""
    ids = record.get("instruction_id_list")
    kwargs = record.get("kwargs")
    if not isinstance(ids, Sequence) or isinstance(ids, str) or not ids:
        raise InstructionError("instruction_id_list must be a non-empty list of instruction ids")
    if kwargs is None:
        kwargs = [{}] * len(ids)
    if not isinstance(kwargs, Sequence) or isinstance(kwargs, str) or len(kwargs) != len(ids):
        raise InstructionError(f"kwargs must be a list of {len(ids)} dicts aligned with "
                               "instruction_id_list")
    return [bind(i, k) for i, k in zip(ids, kwargs)]


def loose_variants(response: str) -> list[str]:
    """The official loose-mode rewrites, in its order (the response itself first)."""
    lines = response.split("\n")
    cut = ["\n".join(lines[1:]).strip(), "\n".join(lines[:-1]).strip(),
           "\n".join(lines[1:-1]).strip()]
    return [response, response.replace("*", ""), *cut, *(c.replace("*", "") for c in cut)]


def _follows(check: Check, response: str) -> bool:
    return bool(response.strip()) and check(response)


def judge(checks: Sequence[Check], response: str) -> tuple[list[bool], list[bool]]:
    """(strict, loose) per instruction, with the official evaluation_lib semantics."""
    strict = [_follows(check, response) for check in checks]
    variants: list[str] | None = None
    loose = []
    for check, followed in zip(checks, strict):
        if not followed:
            variants = variants or loose_variants(response)
            followed = any(_follows(check, v) for v in variants[1:])
        loose.append(followed)
    return strict, loose


def verify(record: Mapping[str, Any], completion: Any, *, think_opened: bool = True,
           mode: Literal["strict", "loose"] = "strict") -> Verdict:
    """Score = fraction of the record's instructions the final answer follows (`mode`)."""
    try:
        checks = build_checks(record)
    except InstructionError as e:
        return Verdict(score=None, detail={"verifier": VERIFIER}, error=str(e))
    answer = final_answer(completion_text(completion), think_opened=think_opened)
    if answer is None:
        unfollowed = [False] * len(checks)
        return Verdict(score=0.0, detail={"verifier": VERIFIER, "followed": unfollowed,
                                          "followed_loose": list(unfollowed),
                                          "unfinished": True})
    strict, loose = judge(checks, answer)
    followed = loose if mode == "loose" else strict
    return Verdict(score=sum(followed) / len(followed),
                   detail={"verifier": VERIFIER, "followed": strict, "followed_loose": loose})


def verify_batch(records: Sequence[Mapping[str, Any]], *, think_opened: bool = True,
                 mode: Literal["strict", "loose"] = "strict") -> list[Verdict]:
    """The registry's `ifeval` verifier: `verify` on each record's `completion`."""
    return [verify(r, r["completion"], think_opened=think_opened, mode=mode)
            if r.get("completion") is not None
            else Verdict(None, {"verifier": VERIFIER}, "record has no 'completion'")
            for r in records]


def ifeval_reward(completions: Sequence[Any], instruction_id_list: Sequence[Any],
                  kwargs: Sequence[Any], **columns: Any) -> list[float | None]:
    """TRL reward function: one score per completion; None where its record cannot be judged.

    TRL's GRPOTrainer passes the completions plus every dataset column as a list; only the
    IFEval columns are used here.
    """
    return [verify({"instruction_id_list": ids, "kwargs": kw}, completion).score
            for completion, ids, kw in zip(completions, instruction_id_list, kwargs, strict=True)]

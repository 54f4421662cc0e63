"""RewardRouter: one stage's weighted rewards applied to a batch of samples, concurrently.

A stage's rewards are terms (name, weight, batch verifier, options, tasks): the built-in verifiers
the recipe enables and its custom ones, all called the same way (`qwqrl.verifiers.registry`).
A term with tasks judges the records of those tasks (their accuracy); a term without judges every
record (shaping: format, overlong). The reward is the weighted sum. Terms run side by side in
threads (math in its process pool, code over HTTP to the sandbox, the RM in batches). A sample a
term could not judge (sandbox SE, RM failure, a bad record, a custom function that raised or
returned None), or that no accuracy term covers, gets reward None: the trainer masks it out of
the loss and counts it, instead of teaching the model that a correct answer was wrong.
"""
from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from qwqrl.config import TASKS, RewardsConfig
from qwqrl.errors import UserError
from qwqrl.verifiers.base import Verdict
from qwqrl.verifiers.registry import (BUILTIN, BatchVerifier, CustomReward, as_batch_verifier,
                                      batch_verifier, context_for, judge, load_function)


@dataclass
class Scored:
    rewards: list[float | None]                 # weighted sum per record; None = masked
    per_verifier: dict[str, list[float | None]]  # raw scores, None where not applied
    errors: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Term:
    """One weighted reward: a batch verifier, its options, the tasks it judges (None: all)."""
    name: str
    weight: float
    verify: BatchVerifier
    options: dict[str, Any]
    tasks: frozenset[str] | None

    def applies(self, record: dict[str, Any]) -> bool:
        return self.tasks is None or record.get("task") in self.tasks


def reward_terms(cfg: RewardsConfig) -> list[Term]:
    """The enabled rewards of a stage, built-ins first (registry order), then custom ones."""
    terms = []
    for name, entry in cfg.enabled().items():
        if isinstance(entry, CustomReward):
            verify = as_batch_verifier(load_function(entry.fn), f"rewards.{name}.fn")
            tasks = entry.tasks
        else:
            verify, tasks = batch_verifier(name), BUILTIN[name].tasks
        terms.append(Term(name, entry.weight, verify, entry.call_options(),
                          None if tasks is None else frozenset(tasks)))
    return terms


def record_tasks(stage_rewards: Iterable[RewardsConfig]) -> tuple[str, ...]:
    """The record tasks a run may hold: the built-in ones and those its custom rewards judge."""
    custom = (t for cfg in stage_rewards for entry in cfg.enabled().values()
              if isinstance(entry, CustomReward) for t in entry.tasks or ())
    return tuple(dict.fromkeys((*TASKS, *custom)))


class RewardRouter:
    """Scores records (dicts with `task`, `completion`, `completion_ids` and reference fields).

    The other arguments are the run-time context a verifier may name (registry.CONTEXT)."""

    def __init__(self, terms: list[Term], max_new_tokens: int, sandbox_client: Any = None,
                 reward_model: Any = None, think_opened: bool = True) -> None:
        self.terms = terms
        self.context = {"think_opened": think_opened, "client": sandbox_client,
                        "scorer": reward_model, "max_new_tokens": max_new_tokens}

    @classmethod
    def from_config(cls, cfg: RewardsConfig, max_new_tokens: int, **context: Any) -> RewardRouter:
        return cls(reward_terms(cfg), max_new_tokens, **context)

    def tasks(self) -> set[str]:
        """Tasks this router can judge (an accuracy term covers them)."""
        return {t for term in self.terms for t in term.tasks or ()}

    def check_tasks(self, records: list[dict[str, Any]], where: str) -> None:
        """Every task in a stage's data must have an accuracy reward: fail before training."""
        missing = {r["task"] for r in records} - self.tasks()
        if missing:
            raise UserError(f"{where}: data has task(s) {sorted(missing)} but `rewards` judges "
                            f"none of them (add rewards.{sorted(missing)[0]}, or list the task "
                            "under a custom reward's `tasks`)")

    def score(self, records: list[dict[str, Any]]) -> Scored:
        jobs = {t.name: [i for i, r in enumerate(records) if t.applies(r)] for t in self.terms}
        jobs = {name: idx for name, idx in jobs.items() if idx}
        terms = {t.name: t for t in self.terms}
        with ThreadPoolExecutor(max_workers=max(1, len(jobs))) as pool:
            futures = {name: pool.submit(self._run, terms[name], [records[i] for i in idx])
                       for name, idx in jobs.items()}
            verdicts = {name: f.result() for name, f in futures.items()}

        per: dict[str, list[float | None]] = {n: [None] * len(records) for n in jobs}
        errors: dict[str, int] = {}
        rewards: list[float | None] = [0.0] * len(records)
        task_judged = [False] * len(records)
        for name, idx in jobs.items():
            for i, v in zip(idx, verdicts[name]):
                per[name][i] = v.score
                if v.score is None:
                    errors[name] = errors.get(name, 0) + 1
                    rewards[i] = None
                elif rewards[i] is not None:
                    rewards[i] += terms[name].weight * v.score
                if terms[name].tasks is not None:
                    task_judged[i] = True
        for i, judged in enumerate(task_judged):
            if not judged:  # no accuracy term for this record's task: never a silent 0
                rewards[i] = None
                errors["unroutable"] = errors.get("unroutable", 0) + 1
        return Scored(rewards, per, errors)

    def _run(self, term: Term, records: list[dict[str, Any]]) -> list[Verdict]:
        kwargs = {**context_for(term.verify, self.context), **term.options}
        return judge(term.name, term.verify, records, **kwargs)

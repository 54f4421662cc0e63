"""RewardRouter: one stage's verifiers applied to a batch of samples, concurrently.

Each record is judged by its task's accuracy verifier (math, code, ifeval, general) plus every
shaping term the stage enables (format, overlong); the reward is the weighted sum. Verifiers run
side by side in threads (math in its process pool, code over HTTP to the sandbox, the RM in
batches). A task verifier that cannot judge a sample (sandbox SE, RM failure, a bad record)
gives reward None: the trainer masks that sample out of the loss and counts it, instead of
teaching the model that a correct answer was wrong.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from qwqrl.config import RewardsConfig
from qwqrl.verifiers.base import Verdict
from qwqrl.verifiers.registry import TASK_VERIFIERS, verify_batch

SHAPING = ("format", "overlong")


@dataclass
class Scored:
    rewards: list[float | None]                 # weighted sum per record; None = masked
    per_verifier: dict[str, list[float | None]]  # raw scores, None where not applied
    errors: dict[str, int] = field(default_factory=dict)


class RewardRouter:
    """Scores records (dicts with `task`, `completion`, `completion_ids` and reference fields)."""

    def __init__(self, cfg: RewardsConfig, max_new_tokens: int, sandbox_client: Any = None,
                 reward_model: Any = None, think_opened: bool = True) -> None:
        self.weights = {name: spec.weight for name, spec in cfg.enabled().items()}
        self.options: dict[str, dict[str, Any]] = {}
        if cfg.math:
            self.options["math"] = {"timeout_s": cfg.math.timeout_s, "think_opened": think_opened}
        if cfg.code:
            self.options["code"] = {"client": sandbox_client, "think_opened": think_opened}
            self.all_or_nothing = cfg.code.all_or_nothing
        if cfg.ifeval:
            self.options["ifeval"] = {"think_opened": think_opened}
            self.ifeval_mode = cfg.ifeval.mode
        if cfg.tool_call:
            self.options["tool_call"] = {"think_opened": think_opened}
        if cfg.format:
            self.options["format"] = {"think_opened": think_opened}
        if cfg.overlong:
            self.options["overlong"] = {"max_len": cfg.overlong.max_length or max_new_tokens,
                                        "buffer": min(cfg.overlong.buffer,
                                                      cfg.overlong.max_length or max_new_tokens)}
        self.reward_model = reward_model
        if cfg.general and reward_model is None:
            raise ValueError("rewards.general is enabled but no reward model was given")

    def tasks(self) -> set[str]:
        """Tasks this router can judge (their accuracy verifier is enabled)."""
        return {t for t, v in TASK_VERIFIERS.items() if v in self.weights}

    def score(self, records: list[dict[str, Any]]) -> Scored:
        jobs: dict[str, list[int]] = {}
        for i, r in enumerate(records):
            verifier = TASK_VERIFIERS.get(r.get("task", ""))
            if verifier in self.weights:
                jobs.setdefault(verifier, []).append(i)
        for name in SHAPING:
            if name in self.weights:
                jobs[name] = list(range(len(records)))
        with ThreadPoolExecutor(max_workers=max(1, len(jobs))) as pool:
            futures = {name: pool.submit(self._run, name, [records[i] for i in idx])
                       for name, idx in jobs.items()}
            verdicts = {name: f.result() for name, f in futures.items()}

        per: dict[str, list[float | None]] = {n: [None] * len(records) for n in jobs}
        errors: dict[str, int] = {}
        rewards: list[float | None] = [0.0] * len(records)
        task_judged = [False] * len(records)
        for name, idx in jobs.items():
            for i, v in zip(idx, verdicts[name]):
                score = self._score_of(name, v)
                per[name][i] = score
                if score is None:
                    errors[name] = errors.get(name, 0) + 1
                    rewards[i] = None
                elif rewards[i] is not None:
                    rewards[i] += self.weights[name] * score
                if name not in SHAPING:
                    task_judged[i] = True
        for i, judged in enumerate(task_judged):
            if not judged:  # no enabled verifier for this record's task: never a silent 0
                rewards[i] = None
                errors["unroutable"] = errors.get("unroutable", 0) + 1
        return Scored(rewards, per, errors)

    def _run(self, name: str, records: list[dict[str, Any]]) -> list[Verdict]:
        if name == "general":
            return self.reward_model.verify_batch(records)
        return verify_batch(name, records, **self.options[name])

    def _score_of(self, name: str, v: Verdict) -> float | None:
        if v.score is None:
            return None
        if name == "code" and self.all_or_nothing:
            return float(v.detail.get("passed") == v.detail.get("total") and v.score > 0)
        if name == "ifeval" and self.ifeval_mode == "loose":
            loose = v.detail.get("followed_loose") or []
            return sum(loose) / len(loose) if loose else v.score
        return v.score

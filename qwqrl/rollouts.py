"""Rollout collection for one RL step: prompts -> G completions each -> rewards -> kept groups.

1. `trainer.batch_size` is the number of prompts per optimizer step over all data-parallel
   ranks: every rank draws the same `batch_size` prompts from the mixture (same seed, same
   order) and keeps its share, `batch_size // world` of them.
2. Each prompt is sampled `num_generations` times and every completion scored by the stage's
   RewardRouter; a sample no reward could judge has reward NaN (masked, not 0).
3. A group whose valid rewards do not differ carries no GRPO signal: with `filter_zero_std` it is
   dropped (`algorithms.dynamic_sampling`), and with DAPO dynamic sampling more rounds are drawn
   until `batch_size // world` informative groups are kept or `max_rounds` is reached.
4. The metrics describe everything generated this step, from the same informative-group decision
   the filter used (`frac_reward_zero_std` is the share of groups the filter would drop); with
   tools (`qwqrl.tools`), tool use too, and pass rates split by whether a sample used a tool.
5. Rewards stream: the generator yields each prompt's group as soon as it has finished
   (`Generator.generate_stream`) and the group is scored in a thread pool while the rest
   generate; the groups are then put back in prompt order, so the batch is the one scoring
   everything at the end would give. `timing/reward_s` is the scoring left after the last group
   finished generating, the reward phase's visible cost; `timing/reward_overlapped_s` the scoring
   time hidden behind generation (summed over groups, so threads can make it exceed generation).
"""
from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import torch

from qwqrl import algorithms as alg
from qwqrl.config import AlgorithmConfig, GenerationConfig
from qwqrl.data.mixture import MixtureSampler
from qwqrl.distributed import Dist
from qwqrl.generation import Generator, Rollout, SamplingParams
from qwqrl.rewards import RewardRouter
from qwqrl.verifiers.registry import TASK_VERIFIERS

# Groups scored at once while the rest generate: the sandbox and a reward-model server are
# HTTP I/O, so threads overlap them; the router fans each group out over its terms itself.
SCORING_THREADS = 4


@dataclass
class Batch:
    """The samples of one update: rollouts, their records and rewards, grouped by prompt."""
    rollouts: list[Rollout]
    records: list[dict[str, Any]]
    rewards: torch.Tensor      # (B,) NaN = masked
    per_verifier: dict[str, list[float | None]]

    def take(self, idx: list[int]) -> Batch:
        return Batch([self.rollouts[i] for i in idx], [self.records[i] for i in idx],
                     self.rewards[idx], {k: [v[i] for i in idx] for k, v in self.per_verifier.items()})

    @staticmethod
    def concat(parts: list[Batch]) -> Batch:
        keys = {k for p in parts for k in p.per_verifier}
        return Batch([r for p in parts for r in p.rollouts], [r for p in parts for r in p.records],
                     torch.cat([p.rewards for p in parts]),
                     {k: [s for p in parts for s in p.per_verifier.get(k, [None] * len(p.rollouts))]
                      for k in keys})

    def sample_rows(self, limit: int = 8) -> list[dict[str, Any]]:
        """The first samples as rows for the tracker's sample table."""
        return [{"task": rec.get("task"), "prompt": rec.get("prompt"),
                 "completion": rec.get("completion"), "reward": None if math.isnan(r) else r}
                for rec, r in list(zip(self.records, self.rewards.tolist()))[:limit]]


def sampling_params(gen: GenerationConfig) -> SamplingParams:
    """How a stage samples its rollouts."""
    return SamplingParams(max_new_tokens=gen.max_new_tokens, temperature=gen.temperature,
                          top_p=gen.top_p, top_k=gen.top_k)


def informative_groups(rewards: torch.Tensor, group_size: int) -> list[int]:
    """Groups (in order) whose valid rewards differ: what the zero-variance filter keeps."""
    groups = [[None if math.isnan(r) else r for r in row]
              for row in rewards.view(-1, group_size).tolist()]
    return alg.dynamic_sampling(groups, target_groups=len(groups)).keep


class RolloutCollector:
    """Draws, generates and scores the rollouts of each step (see the module docstring)."""

    def __init__(self, sampler: MixtureSampler, generator: Generator, router: RewardRouter,
                 render: Callable[[dict[str, Any]], str], sampling: SamplingParams,
                 algo: AlgorithmConfig, dist: Dist) -> None:
        self.sampler, self.generator, self.router, self.render = sampler, generator, router, render
        self.sampling, self.algo, self.dist = sampling, algo, dist

    def collect(self, batch_size: int, policy_version: int = 0) -> tuple[Batch, dict[str, float]]:
        """This rank's batch of `batch_size // world` groups, and the step's rollout metrics.
        `policy_version`: the learner version whose weights the generator holds (stamped on
        every rollout)."""
        world, G = self.dist.world_size, self.algo.num_generations
        assert batch_size % world == 0, f"batch_size {batch_size} does not split over {world} ranks"
        per_rank = batch_size // world
        rounds = self.algo.dynamic_sampling.max_rounds if self.algo.dynamic_sampling.enabled else 1
        timing = {"timing/generate_s": 0.0, "timing/reward_s": 0.0, "timing/reward_overlapped_s": 0.0}
        errors: Counter[str] = Counter()
        seen: list[Batch] = []
        for _ in range(rounds):
            prompts = self.sampler.sample(batch_size)[self.dist.rank::world]
            seen.append(self._round(prompts, timing, errors, policy_version))
            everything = Batch.concat(seen)
            informative = informative_groups(everything.rewards, G)
            keep = informative if self._filters() else list(range(len(everything.rollouts) // G))
            if len(keep) >= per_rank or not self.algo.dynamic_sampling.enabled:
                break
        kept = everything.take([g * G + j for g in keep[:per_rank] for j in range(G)])
        stats = rollout_metrics(everything, informative, G)
        stats.update(timing, filtered_frac=1 - len(kept.rollouts) / len(everything.rollouts),
                     generation_rounds=float(len(seen)))
        # samples a reward could not judge (masked, not scored 0), per reward
        stats.update({f"rewards/{name}/errors": float(n) for name, n in errors.items()})
        return kept, stats

    def _filters(self) -> bool:
        return self.algo.filter_zero_std and self.algo.name != "ppo"

    def _round(self, prompts: list[dict[str, Any]], timing: dict[str, float],
               errors: Counter[str], policy_version: int) -> Batch:
        """Generate and score one round; each group is scored as soon as it has finished."""
        t = time.perf_counter()
        texts = [self.render(p) for p in prompts]
        with ThreadPoolExecutor(max_workers=SCORING_THREADS) as pool:
            self.generator.wake_up()
            try:
                futures = [pool.submit(self._score, prompts, group)
                           for group in self.generator.generate_stream(
                               texts, self.algo.num_generations, self.sampling)]
            finally:
                self.generator.sleep()
            generated = time.perf_counter()
            scored = [f.result() for f in futures]
        timing["timing/generate_s"] += generated - t
        timing["timing/reward_s"] += time.perf_counter() - generated
        timing["timing/reward_overlapped_s"] += sum(max(0.0, min(end, generated) - start)
                                                    for _, (start, end), _ in scored)
        for _, _, group_errors in scored:
            errors.update(group_errors)
        groups = sorted((part for part, _, _ in scored), key=lambda b: b.rollouts[0].prompt_index)
        batch = Batch.concat(groups)
        for rollout in batch.rollouts:
            rollout.policy_version = policy_version
        return batch

    def _score(self, prompts: list[dict[str, Any]],
               group: list[Rollout]) -> tuple[Batch, tuple[float, float], dict[str, int]]:
        """One prompt's group as a scored Batch, when its scoring started and ended, and the
        reward errors."""
        t = time.perf_counter()
        records = [{**prompts[r.prompt_index], "completion": r.text,
                    "completion_ids": model_tokens(r),
                    "completion_length": len(model_tokens(r))} for r in group]
        scored = self.router.score(records)
        batch = Batch(group, records, alg.rewards_tensor(scored.rewards), scored.per_verifier)
        return batch, (t, time.perf_counter()), scored.errors


def rollout_metrics(batch: Batch, informative: list[int], group_size: int) -> dict[str, float]:
    """Reward, length and pass-rate statistics of every sample generated in a step."""
    r = batch.rewards
    valid = ~torch.isnan(r)
    groups = len(r) // group_size
    lengths = torch.tensor([len(x.completion_ids) for x in batch.rollouts], dtype=torch.float)
    out = {
        "reward": float(r[valid].mean()) if valid.any() else float("nan"),
        "reward_std": float(r[valid].std()) if valid.sum() > 1 else 0.0,
        "frac_reward_zero_std": (groups - len(informative)) / groups,
        "completions/mean_length": float(lengths.mean()),
        "completions/max_length": float(lengths.max()),
        "completions/clipped_ratio": float(sum(x.finish_reason == "length" for x in batch.rollouts)
                                           / len(batch.rollouts)),
    }
    for name, scores in batch.per_verifier.items():
        judged = [x for x in scores if x is not None]
        if judged:
            out[f"rewards/{name}/mean"] = sum(judged) / len(judged)
    for task, verifier in TASK_VERIFIERS.items():
        raw = [x for rec, x in zip(batch.records, batch.per_verifier.get(verifier, []))
               if rec["task"] == task and x is not None]
        if raw and task == "general":
            out["rm_score/general"] = sum(raw) / len(raw)
        elif raw:
            out[f"pass_rate/{task}"] = sum(x >= 1.0 for x in raw) / len(raw)
    out["reward/masked_frac"] = float((~valid).float().mean())
    if any(x.tool_stats is not None for x in batch.rollouts):
        out.update(tool_metrics(batch))
    return out


def model_tokens(rollout: Rollout) -> list[int]:
    """The completion tokens the model sampled, without tool responses: what the rewards see as
    the completion's length (the overlong penalty judges the model's verbosity, not a tool's)."""
    return [t for t, a in zip(rollout.completion_ids, rollout.model_mask()) if a]


def tool_metrics(batch: Batch) -> dict[str, float]:
    """Tool use over a step's samples, and each task's pass rate split by whether the sample
    called a tool (`pass_rate/<task>/with_tool`, `.../without_tool`)."""
    stats = [x.tool_stats for x in batch.rollouts]
    n = len(stats)
    used = [s is not None and s.calls > 0 for s in stats]
    tokens = sum(len(x.completion_ids) for x in batch.rollouts)
    out = {
        "tools/calls_per_sample": sum(s.calls for s in stats if s) / n,
        "tools/errors_per_sample": sum(s.errors for s in stats if s) / n,
        "tools/turns_mean": sum(s.turns if s else 1 for s in stats) / n,
        "tools/used_frac": sum(used) / n,
        "tools/max_turns_frac": sum(bool(s and s.hit_max_turns) for s in stats) / n,
        "tools/response_token_frac": 1 - sum(len(model_tokens(x)) for x in batch.rollouts) / max(1, tokens),
    }
    for task, verifier in TASK_VERIFIERS.items():
        for split, want in (("with_tool", True), ("without_tool", False)):
            raw = [x for rec, x, u in zip(batch.records, batch.per_verifier.get(verifier, []), used)
                   if rec["task"] == task and x is not None and u == want]
            if raw and task != "general":
                out[f"pass_rate/{task}/{split}"] = sum(x >= 1.0 for x in raw) / len(raw)
    return out

"""One RL stage: generate -> reward -> advantages -> DeepSpeed update -> weight sync, repeated.

Per step (DESIGN.md's data flow):
1. Draw `batch_size` prompts per rank from the stage's mixture and sample `num_generations`
   completions of each (HF generate or colocated vLLM).
2. Score them with the stage's RewardRouter; a sample no verifier could judge is masked.
3. Drop zero-variance groups (they carry no GRPO signal); with DAPO dynamic sampling, generate
   more rounds until the batch is full again or the round cap is hit.
4. Advantages: GRPO (group/batch/no std = Dr.GRPO), RLOO, or PPO's GAE with a critic.
5. `epochs` optimizer steps on the batch with the clipped loss (clip-higher, dual clip, KL to a
   reference when beta > 0, truncated IS against the generator's log-probs with vLLM).
6. Push the weights to the generator, log, and checkpoint every `checkpoint.every` steps.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from qwqrl import algorithms as alg
from qwqrl.checkpoint import Progress, load_step, save_step
from qwqrl.config import RLStage
from qwqrl.data.mixture import MixtureSampler
from qwqrl.distributed import Dist, all_reduce_mean
from qwqrl.errors import UserError
from qwqrl.generation import Generator, Rollout, SamplingParams
from qwqrl.learner import Learner
from qwqrl.rewards import RewardRouter
from qwqrl.verifiers.registry import TASK_VERIFIERS
from qwqrl.sequences import Packed, completion_logprobs, completion_values, pack


class TrainingDiverged(RuntimeError):
    """Loss or gradients became NaN/inf; the last good state was checkpointed."""


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


class RLTrainer:
    def __init__(self, stage: RLStage, stage_index: int, policy: Learner, tokenizer: Any,
                 generator: Generator, router: RewardRouter, sampler: MixtureSampler,
                 dist: Dist, tracker: Any, run_dir: Path, progress: Progress,
                 render: Callable[[dict[str, Any]], str], reference: torch.nn.Module | None = None,
                 critic: Learner | None = None, global_step: int = 0) -> None:
        self.stage, self.stage_index = stage, stage_index
        self.policy, self.critic, self.reference = policy, critic, reference
        self.tokenizer, self.generator, self.router, self.sampler = tokenizer, generator, router, sampler
        self.dist, self.tracker, self.progress = dist, tracker, progress
        self.stage_dir = run_dir / "checkpoints" / stage.name
        self.render = render
        self.step = 0
        self.global_step = global_step
        self.algo = stage.algorithm
        gen = stage.generation
        self.sampling = SamplingParams(max_new_tokens=gen.max_new_tokens, temperature=gen.temperature,
                                       top_p=gen.top_p, top_k=gen.top_k)
        if self.algo.name == "ppo" and critic is None:
            raise ValueError("ppo needs a critic Learner")

    # ------------------------------------------------------------------------------- driver

    def engines(self) -> dict[str, Any]:
        engines = {"policy": self.policy.engine}
        if self.critic is not None:
            engines["critic"] = self.critic.engine
        return engines

    def resume(self, checkpoint: Path) -> None:
        state = load_step(checkpoint, self.engines(), self.dist.rank)
        self.step, self.global_step = state["step"], state["global_step"]
        self.sampler.load_state_dict(state["sampler"])
        self.generator.sync_weights(self.policy.module)

    def save(self) -> Path:
        state = {"stage": self.stage.name, "stage_index": self.stage_index, "step": self.step,
                 "global_step": self.global_step, "sampler": self.sampler.state_dict()}
        return save_step(self.stage_dir, self.step, self.engines(), state, self.progress,
                         self.stage.name, self.stage.checkpoint.keep, self.dist.is_main, self.dist.rank)

    def train(self, progress_bar: Any = None) -> None:
        every = self.stage.checkpoint.every
        while self.step < self.stage.trainer.max_steps:
            metrics = self.train_step()
            self.step += 1
            self.global_step += 1
            if self.dist.is_main and self.step % self.tracker.log_every == 0:
                self.tracker.log(metrics, step=self.global_step)
            if every and self.step % every == 0 and self.step < self.stage.trainer.max_steps:
                self.save()
            if progress_bar is not None:
                progress_bar(self.step, metrics)

    # ---------------------------------------------------------------------------------- step

    def train_step(self) -> dict[str, float]:
        timing: dict[str, float] = {}
        t0 = time.perf_counter()
        batch, gen_stats = self.collect(timing)
        t1 = time.perf_counter()
        try:
            metrics = self.update(batch)
        except torch.OutOfMemoryError as e:
            raise RuntimeError(
                f"stage {self.stage.name} step {self.step + 1}: out of memory in the update. "
                "Lower trainer.micro_batch_size or set trainer.micro_batch_tokens, turn on "
                "model.gradient_checkpointing, use trainer.zero_stage 3 (with offload), or "
                "lower generation.max_new_tokens.") from e
        timing["timing/update_s"] = time.perf_counter() - t1
        t2 = time.perf_counter()
        self.generator.sync_weights(self.policy.module)
        timing["timing/sync_s"] = time.perf_counter() - t2
        timing["timing/step_s"] = time.perf_counter() - t0
        metrics.update(gen_stats)
        metrics = all_reduce_mean(metrics)
        metrics.update(timing, stage=float(self.stage_index))
        if not all(math.isfinite(v) for k, v in metrics.items() if k in ("loss", "grad_norm")):
            path = self.save()
            raise TrainingDiverged(f"stage {self.stage.name} step {self.step + 1}: loss or gradient "
                                   f"norm is not finite ({metrics.get('loss')}, "
                                   f"{metrics.get('grad_norm')}); state before it saved at {path}. "
                                   "Lower trainer.lr or raise trainer.grad_clip's strictness.")
        if self.dist.is_main and self.step % self.tracker.samples_every == 0:
            self.tracker.log_samples(self.sample_rows(batch), step=self.global_step + 1)
        return metrics

    def generate(self, records: list[dict[str, Any]]) -> list[Rollout]:
        prompts = [self.render(r) for r in records]
        self.generator.wake_up()
        try:
            return self.generator.generate(prompts, self.algo.num_generations, self.sampling)
        finally:
            self.generator.sleep()

    def collect(self, timing: dict[str, float]) -> tuple[Batch, dict[str, float]]:
        """Generate and score until the batch holds `batch_size` useful groups (or rounds end)."""
        G = self.algo.num_generations
        want = self.stage.trainer.batch_size
        rounds = self.algo.dynamic_sampling.max_rounds if self.algo.dynamic_sampling.enabled else 1
        kept: list[Batch] = []
        seen: list[Batch] = []
        errors: dict[str, int] = {}
        timing["timing/generate_s"] = timing["timing/reward_s"] = 0.0
        for _ in range(rounds):
            world = self.dist.world_size
            prompts = self.sampler.sample(want * world)[self.dist.rank::world]
            t = time.perf_counter()
            rollouts = self.generate(prompts)
            timing["timing/generate_s"] += time.perf_counter() - t
            t = time.perf_counter()
            records = [{**prompts[r.prompt_index], "completion": r.text,
                        "completion_ids": r.completion_ids,
                        "completion_length": len(r.completion_ids)} for r in rollouts]
            scored = self.router.score(records)
            timing["timing/reward_s"] += time.perf_counter() - t
            for name, count in scored.errors.items():
                errors[name] = errors.get(name, 0) + count
            batch = Batch(rollouts, records, alg.rewards_tensor(scored.rewards), scored.per_verifier)
            seen.append(batch)
            keep = self.useful_groups(batch.rewards)
            kept.append(batch.take(keep))
            if sum(len(b.rollouts) for b in kept) >= want * G or not self.algo.dynamic_sampling.enabled:
                break
        full = Batch.concat(kept)
        if len(full.rollouts) > want * G:
            full = full.take(list(range(want * G)))
        everything = Batch.concat(seen)
        stats = self.rollout_metrics(everything, filtered_frac=1 - len(full.rollouts) / len(everything.rollouts))
        stats["generation_rounds"] = float(len(seen))
        # samples a verifier could not judge (masked, not scored 0), per verifier
        stats.update({f"rewards/{name}/errors": float(n) for name, n in errors.items()})
        return full, stats

    def useful_groups(self, rewards: torch.Tensor) -> list[int]:
        """Indices of samples in groups that carry signal (all samples when not filtering)."""
        if not self.algo.filter_zero_std or self.algo.name == "ppo":
            return list(range(len(rewards)))
        mask = alg.nonzero_variance_mask(rewards, self.algo.num_generations)
        return mask.nonzero().flatten().tolist()

    def rollout_metrics(self, batch: Batch, filtered_frac: float) -> dict[str, float]:
        G = self.algo.num_generations
        r = batch.rewards
        valid = ~torch.isnan(r)
        lengths = torch.tensor([len(x.completion_ids) for x in batch.rollouts], dtype=torch.float)
        grouped = torch.where(valid, r, torch.zeros_like(r)).view(-1, G)
        zero_std = (grouped.max(-1).values - grouped.min(-1).values).abs() < 1e-8
        out = {
            "reward": float(r[valid].mean()) if valid.any() else float("nan"),
            "reward_std": float(r[valid].std()) if valid.sum() > 1 else 0.0,
            "frac_reward_zero_std": float(zero_std.float().mean()),
            "completions/mean_length": float(lengths.mean()),
            "completions/max_length": float(lengths.max()),
            "completions/clipped_ratio": float(sum(x.finish_reason == "length" for x in batch.rollouts)
                                               / len(batch.rollouts)),
            "filtered_frac": filtered_frac,
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
        return out

    # -------------------------------------------------------------------------------- update

    def update(self, batch: Batch) -> dict[str, float]:
        if not batch.rollouts:
            return {"loss": 0.0, "grad_norm": 0.0, "skipped_empty_batch": 1.0,
                    "learning_rate": float(self.policy.scheduler.get_last_lr()[0])}
        device = self.dist.device
        rewards = batch.rewards.to(device)
        valid = ~torch.isnan(rewards)
        truncated = torch.tensor([r.finish_reason == "length" for r in batch.rollouts], device=device)
        prompts = [r.prompt_ids for r in batch.rollouts]
        comps = [r.completion_ids for r in batch.rollouts]
        micro = self.policy.micro_batches([len(p) + len(c) for p, c in zip(prompts, comps)])
        packs = [pack([prompts[i] for i in mb], [comps[i] for i in mb], self.tokenizer.pad_token_id,
                      device) for mb in micro]
        temp = self.sampling.temperature or 1.0

        old_lp = self._no_grad_logprobs(self.policy.module, packs, temp) if self.algo.epochs > 1 else None
        ref_lp = (self._no_grad_logprobs(self.reference, packs, temp)
                  if self.reference is not None else None)
        gen_lp = [self._pad_lists([batch.rollouts[i].logprobs for i in mb], p.width, device)
                  for mb, p in zip(micro, packs)]
        advantages, returns, values_old, extra = self._advantages(batch, rewards, valid, micro, packs, ref_lp)

        masks = [alg.loss_mask(p.completion_mask.float(), valid[mb],
                               truncated[mb] if self.algo.mask_truncated else None)
                 for mb, p in zip(micro, packs)]
        totals = self._normalisers(masks)
        metrics: dict[str, list[float]] = {}
        self.policy.train()
        for epoch in range(self.algo.epochs):
            for k, (mb, p) in enumerate(zip(micro, packs)):
                lp, entropy = completion_logprobs(self.policy.engine, p, temp, with_entropy=epoch == 0,
                                                  chunk_size=self.stage.trainer.logprob_chunk_size)
                old = old_lp[k] if old_lp is not None else lp.detach()
                is_w = None
                if self.algo.tis_cap is not None and self.stage.generation.backend == "vllm":
                    is_w, is_metrics = alg.truncated_is_weights(old, gen_lp[k], masks[k], self.algo.tis_cap)
                    self._add(metrics, is_metrics)
                adv = advantages[k]
                loss, m = alg.clipped_policy_loss(
                    lp, old, adv, masks[k], eps_low=self.algo.epsilon_low,
                    eps_high=self.algo.epsilon_high, clip_ratio_c=self.algo.dual_clip,
                    agg=self.algo.loss_agg, max_len=self.sampling.max_new_tokens,
                    ref_logprobs=ref_lp[k] if ref_lp is not None and self.algo.kl.mode == "loss" else None,
                    kl_coef=self.algo.kl.beta if self.algo.kl.mode == "loss" else 0.0,
                    kl_estimator=self.algo.kl.estimator, is_weights=is_w)
                share = self._share(masks[k], totals)
                self.policy.backward(loss * share, last=k == len(micro) - 1)
                m["loss"] = loss.detach()
                if entropy is not None:
                    m["entropy"] = alg.masked_mean(entropy, masks[k])
                self._add(metrics, m, weight=share)
            step_metrics = self.policy.step()
            if self.critic is not None:
                step_metrics.update(self._critic_epoch(packs, masks, returns, values_old, totals))
        out = {k: sum(v) for k, v in metrics.items()}
        out = {k: v / self.algo.epochs for k, v in out.items()}
        out.update(step_metrics)
        out.update(extra)
        return out

    def _advantages(self, batch: Batch, rewards: torch.Tensor, valid: torch.Tensor,
                    micro: list[list[int]], packs: list[Packed], ref_lp: list[torch.Tensor] | None):
        """Per micro-batch advantages: (b,) for outcome methods, (b, T) for PPO."""
        G, name = self.algo.num_generations, self.algo.name
        extra: dict[str, float] = {}
        if name in ("grpo", "dr_grpo"):
            scale = "none" if name == "dr_grpo" else self.algo.scale_rewards
            adv = alg.grpo_advantages(rewards, G, scale=scale, valid=valid)
            return [adv[mb] for mb in micro], None, None, extra
        if name == "rloo":
            adv = alg.rloo_advantages(rewards, G, valid=valid)
            return [adv[mb] for mb in micro], None, None, extra
        # PPO: token rewards (outcome at the last token, optional KL penalty), critic values, GAE.
        advs, rets, vals = [], [], []
        clean = torch.where(valid, rewards, torch.zeros_like(rewards))
        with torch.no_grad():
            for k, (mb, p) in enumerate(zip(micro, packs)):
                mask = p.completion_mask.float()
                if ref_lp is not None and self.algo.kl.mode == "reward":
                    lp, _ = completion_logprobs(self.policy.module, p, self.sampling.temperature or 1.0,
                                                chunk_size=self.stage.trainer.logprob_chunk_size)
                    tok_r = alg.kl_penalized_token_rewards(clean[mb], mask, lp, ref_lp[k],
                                                           self.algo.kl.beta, self.algo.kl.estimator)
                else:
                    tok_r = alg.outcome_token_rewards(clean[mb], mask)
                v = completion_values(self.critic.module, p).float()
                a, r = alg.gae_advantages(tok_r, v, mask, gamma=self.algo.gamma, lam=self.algo.lam)
                advs.append(a); rets.append(r); vals.append(v)
        flat_mask = [p.completion_mask.float() for p in packs]
        # whiten over the whole batch, not per micro-batch
        joined = torch.cat([a[m.bool()] for a, m in zip(advs, flat_mask)])
        mean, std = joined.mean(), joined.std().clamp(min=1e-8)
        advs = [(a - mean) / std * m for a, m in zip(advs, flat_mask)]
        extra["critic/value_mean"] = float(torch.cat([v[m.bool()] for v, m in zip(vals, flat_mask)]).mean())
        return advs, rets, vals, extra

    def _critic_epoch(self, packs, masks, returns, values_old, totals) -> dict[str, float]:
        self.critic.train()
        acc: dict[str, list[float]] = {}
        for k, p in enumerate(packs):
            v = completion_values(self.critic.engine, p).float()
            loss, m = alg.clipped_value_loss(v, values_old[k], returns[k], masks[k],
                                             clip_range=self.algo.value_clip)
            share = self._share(masks[k], totals)
            self.critic.backward(loss * share, last=k == len(packs) - 1)
            m["critic/loss"] = loss.detach()
            self._add(acc, m, weight=share)
        stepped = self.critic.step()
        out = {k: sum(v) for k, v in acc.items()}
        out["critic/grad_norm"] = stepped["grad_norm"]
        return out

    def _no_grad_logprobs(self, model: torch.nn.Module, packs: list[Packed], temp: float) -> list[torch.Tensor]:
        with torch.no_grad():
            return [completion_logprobs(model, p, temp, chunk_size=self.stage.trainer.logprob_chunk_size)[0]
                    for p in packs]

    def _normalisers(self, masks: list[torch.Tensor]) -> dict[str, float]:
        return {"tokens": float(sum(m.sum() for m in masks)),
                "seqs": float(sum((m.sum(-1) > 0).sum() for m in masks)),
                "rows": float(sum(m.shape[0] for m in masks))}

    def _share(self, mask: torch.Tensor, totals: dict[str, float]) -> float:
        """This micro-batch's weight, so the summed micro losses equal the full-batch loss."""
        agg = self.algo.loss_agg
        if agg == "token-mean":
            return float(mask.sum()) / max(1.0, totals["tokens"])
        if agg == "seq-mean-token-sum-norm":
            return mask.shape[0] / max(1.0, totals["rows"])
        return float((mask.sum(-1) > 0).sum()) / max(1.0, totals["seqs"])

    @staticmethod
    def _pad_lists(rows: list[list[float]], width: int, device: torch.device) -> torch.Tensor:
        out = torch.zeros(len(rows), width, device=device)
        for i, row in enumerate(rows):
            out[i, :len(row)] = torch.tensor(row[:width], device=device)
        return out

    @staticmethod
    def _add(acc: dict[str, list[float]], metrics: dict[str, Any], weight: float = 1.0) -> None:
        for k, v in metrics.items():
            acc.setdefault(k, []).append(float(v) * weight)

    def sample_rows(self, batch: Batch, limit: int = 8) -> list[dict[str, Any]]:
        rows = []
        for rec, r in list(zip(batch.records, batch.rewards.tolist()))[:limit]:
            rows.append({"task": rec.get("task"), "prompt": rec.get("prompt"),
                         "completion": rec.get("completion"),
                         "reward": None if math.isnan(r) else r})
        return rows


def check_tasks(stage: RLStage, router: RewardRouter, records: list[dict[str, Any]], where: str) -> None:
    """Every task in a stage's data must have its verifier enabled: fail before training."""
    missing = {r["task"] for r in records} - router.tasks()
    if missing:
        raise UserError(f"{where}: data has task(s) {sorted(missing)} but `rewards` enables no "
                        f"verifier for them (add rewards.{sorted(missing)[0]})")

"""One RL stage: collect rollouts -> update the policy -> sync the generator -> log, repeated.

Each step, read top to bottom in `RLTrainer.train_step` (DESIGN.md's data flow):
1. Rollouts (`qwqrl.rollouts`): `trainer.batch_size` prompts over all ranks, `num_generations`
   completions each (HF generate or colocated vLLM), scored by the stage's rewards; groups with
   no reward spread are dropped, and DAPO dynamic sampling draws more rounds to refill.
2. Update (`qwqrl.policy_update`): GRPO / Dr.GRPO / RLOO advantages, or PPO's GAE with the
   critic (`qwqrl.critic`), then `epochs` optimizer steps on the clipped loss.
3. The generator gets the new weights; metrics are averaged over ranks and logged; a step
   checkpoint every `checkpoint.every` steps. A non-finite loss saves the state before it, stops.

With `algorithm.off_policy.max_staleness: k > 0` step 1 is a producer thread's work
(`qwqrl.async_rollouts`), running up to k steps ahead of the update; k = 0 is the loop above.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from qwqrl.async_rollouts import RolloutProducer, drop_stale
from qwqrl.checkpoint import Progress, load_step, save_step
from qwqrl.config import RLStage
from qwqrl.critic import Critic
from qwqrl.distributed import Dist, all_reduce_mean
from qwqrl.generation.base import shares_module
from qwqrl.learner import Learner
from qwqrl.policy_update import UpdateSettings, policy_update
from qwqrl.rollouts import Batch, RolloutCollector


class TrainingDiverged(RuntimeError):
    """Loss or gradients became NaN/inf; the last good state was checkpointed."""


@dataclass
class RunContext:
    """What every stage of a run shares: its folder, progress file, tracker and process group."""
    run_dir: Path
    progress: Progress
    tracker: Any
    dist: Dist


@dataclass
class Models:
    """The networks an RL stage trains or reads."""
    policy: Learner
    reference: torch.nn.Module | None = None  # the KL anchor, when kl.beta > 0
    critic: Critic | None = None              # PPO only

    def engines(self) -> dict[str, Any]:
        engines = {"policy": self.policy.engine}
        if self.critic is not None:
            engines["critic"] = self.critic.learner.engine
        return engines


class RLTrainer:
    def __init__(self, stage: RLStage, stage_index: int, models: Models,
                 collector: RolloutCollector, settings: UpdateSettings, run: RunContext,
                 global_step: int = 0) -> None:
        if stage.algorithm.name == "ppo" and models.critic is None:
            raise ValueError("ppo needs a critic")
        self.stage, self.stage_index, self.models = stage, stage_index, models
        self.collector, self.settings, self.run = collector, settings, run
        self.max_staleness = stage.algorithm.off_policy.max_staleness
        if self.max_staleness and shares_module(collector.generator, models.policy.module):
            raise ValueError(
                f"stage {stage.name}: algorithm.off_policy.max_staleness "
                f"{self.max_staleness} generates while the learner updates, but the generator "
                "runs the learner's own module; use a CopiedHFGenerator (the pipeline builds one "
                "for generation.backend hf), a vLLM engine or rollout workers")
        self.stage_dir = run.run_dir / "checkpoints" / stage.name
        self.step, self.global_step = 0, global_step
        self.sampler_state = collector.sampler.state_dict()  # as of the last batch trained

    def train(self, progress_bar: Any = None) -> None:
        every, max_steps = self.stage.checkpoint.every, self.stage.trainer.max_steps
        producer = self._producer()
        try:
            while self.step < max_steps:
                metrics = self.train_step(producer)
                self.step += 1
                self.global_step += 1
                if self.run.dist.is_main and self.step % self.run.tracker.log_every == 0:
                    self.run.tracker.log(metrics, step=self.global_step)
                if every and self.step % every == 0 and self.step < max_steps:
                    self.save()
                if progress_bar is not None:
                    progress_bar(self.step, metrics)
        finally:
            if producer is not None:
                producer.close()

    def train_step(self, producer: RolloutProducer | None = None) -> dict[str, float]:
        t0 = time.perf_counter()
        batch, rollout_stats = self.rollouts(producer)
        t1 = time.perf_counter()
        metrics = self.update(batch)
        t2 = time.perf_counter()
        (producer or self.collector.generator).sync_weights(self.models.policy.module)
        timing = {"timing/update_s": t2 - t1, "timing/sync_s": time.perf_counter() - t2,
                  "timing/step_s": time.perf_counter() - t0}
        metrics = all_reduce_mean({**metrics, **rollout_stats})
        metrics.update(timing, stage=float(self.stage_index))
        self._check_finite(metrics)
        if self.run.dist.is_main and self.step % self.run.tracker.samples_every == 0:
            self.run.tracker.log_samples(batch.sample_rows(), step=self.global_step + 1)
        return metrics

    def rollouts(self, producer: RolloutProducer | None) -> tuple[Batch, dict[str, float]]:
        """This step's batch: collected now (synchronous), or the producer's, staleness-checked.
        Remembers the data sampler's state as of this batch, which is what a checkpoint saves."""
        if producer is None:
            batch, stats = self.collector.collect(self.stage.trainer.batch_size, self.step)
            self.sampler_state = self.collector.sampler.state_dict()
            return batch, stats
        made, waited = producer.next_batch(self.step)
        self.sampler_state = made.sampler_state
        batch, stale = drop_stale(made.batch, self.step, self.max_staleness,
                                  self.stage.algorithm.num_generations)
        return batch, {**made.stats, **stale, "timing/wait_rollouts_s": waited}

    def _producer(self) -> RolloutProducer | None:
        """The thread that collects ahead, when `max_staleness > 0`."""
        if not self.max_staleness:
            return None
        t = self.stage.trainer
        return RolloutProducer(self.collector, t.batch_size, self.max_staleness, self.step, t.max_steps)

    def update(self, batch: Batch) -> dict[str, float]:
        """`policy_update`, with the knobs to turn named when it runs out of memory."""
        try:
            return policy_update(self.models.policy, batch, self.settings,
                                 self.models.reference, self.models.critic)
        except torch.OutOfMemoryError as e:
            raise RuntimeError(
                f"stage {self.stage.name} step {self.step + 1}: out of memory in the update. "
                "Lower trainer.micro_batch_size or set trainer.micro_batch_tokens, turn on "
                "model.gradient_checkpointing, use trainer.zero_stage 3 (with offload), or "
                "lower generation.max_new_tokens.") from e

    def _check_finite(self, metrics: dict[str, float]) -> None:
        if all(math.isfinite(v) for k, v in metrics.items() if k in ("loss", "grad_norm")):
            return
        path = self.save()
        raise TrainingDiverged(f"stage {self.stage.name} step {self.step + 1}: loss or gradient "
                               f"norm is not finite ({metrics.get('loss')}, "
                               f"{metrics.get('grad_norm')}); state before it saved at {path}. "
                               "Lower trainer.lr or raise trainer.grad_clip's strictness.")

    # ---------------------------------------------------------------------------- checkpoints

    def resume(self, checkpoint: Path) -> None:
        state = load_step(checkpoint, self.models.engines(), self.run.dist.rank)
        self.step, self.global_step = state["step"], state["global_step"]
        self.collector.sampler.load_state_dict(state["sampler"])
        self.sampler_state = state["sampler"]
        self.collector.generator.sync_weights(self.models.policy.module)

    def save(self) -> Path:
        state = {"stage": self.stage.name, "stage_index": self.stage_index, "step": self.step,
                 "global_step": self.global_step, "sampler": self.sampler_state}
        dist = self.run.dist
        return save_step(self.stage_dir, self.step, self.models.engines(), state,
                         self.run.progress, self.stage.name, self.stage.checkpoint.keep,
                         dist.is_main, dist.rank)

"""Asynchronous rollouts: a producer thread collects the next steps' batches while the learner
updates, with at most `algorithm.off_policy.max_staleness` (k) updates between the weights that
sampled a batch and the learner that trains on it.

1. Versions: the learner's version is the number of updates it has made in this stage (the
   trainer's `step`). The batch for step s is trained at version s.
2. The bound: the producer starts step s only once the learner's version is at least s - k, and
   stamps every rollout with the version its generator holds when the collection begins, so a
   batch is at most k versions old when trained (k = 1 is verl's one-step-off: step t+1 is
   generated while step t trains). `drop_stale` still checks every sample, and drops (counts,
   logs) the groups of any sample over the bound, for generators whose workers apply weights on
   their own schedule.
3. Weights: the learner calls `sync_weights` after each update; it takes the same lock the
   producer holds for a whole collection, so weights never change under a running generate and
   a collection's stamp is the version of the weights it used. With k = 1 that lock costs
   nothing: the learner needs the batch being generated next anyway.
4. Resume: each batch carries the data sampler's state right after its prompts were drawn; the
   trainer checkpoints the state of the last batch it *trained*, not of what the producer has
   drawn ahead, so after a SIGKILL the prefetched prompts are drawn again, none trained twice
   or skipped.
5. Only the learner thread issues collectives on the default process group; a generator used
   here must not (docs/generation.md, "Contract"). The generator must not be the learner's module
   (`shares_module`): `CopiedHFGenerator` in process, or rollout workers.
"""
from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from typing import Any

from qwqrl.rollouts import Batch, RolloutCollector


@dataclass
class StepRollouts:
    """One step's batch as the producer made it."""
    step: int                      # the trainer step (in this stage) it is for
    batch: Batch
    stats: dict[str, float]
    sampler_state: dict[str, Any]  # the data sampler right after this batch's prompts were drawn


class RolloutProducer:
    """The producer thread of the module docstring, for steps `first_step`..`end - 1`."""

    def __init__(self, collector: RolloutCollector, batch_size: int, max_staleness: int,
                 first_step: int, end: int) -> None:
        self.collector, self.batch_size, self.max_staleness = collector, batch_size, max_staleness
        self.version = first_step           # updates the learner has made (read under _changed)
        self._changed = threading.Condition()
        self._weights = threading.Lock()    # held by a collection, and by a weight sync
        self._ready: queue.Queue[StepRollouts | BaseException] = queue.Queue()
        self._stop = False
        self._thread = threading.Thread(target=self._run, args=(first_step, end),
                                        name="qwqrl-rollouts", daemon=True)
        self._thread.start()

    def next_batch(self, step: int) -> tuple[StepRollouts, float]:
        """The batch for `step` and the seconds the learner waited for it."""
        t = time.perf_counter()
        item = self._ready.get()
        if isinstance(item, BaseException):
            raise RuntimeError(f"the rollout producer failed before step {step + 1}") from item
        if item.step != step:
            raise RuntimeError(f"the rollout producer made step {item.step + 1}, expected {step + 1}")
        return item, time.perf_counter() - t

    def sync_weights(self, module: Any) -> None:
        """After an update: the generator gets `module`'s weights, the version advances."""
        with self._weights:
            self.collector.generator.sync_weights(module)
            with self._changed:
                self.version += 1
                self._changed.notify_all()

    def close(self) -> None:
        """Stop after the collection under way (if any) and wait for the thread."""
        with self._changed:
            self._stop = True
            self._changed.notify_all()
        self._thread.join()

    def _run(self, first_step: int, end: int) -> None:
        try:
            for step in range(first_step, end):
                with self._changed:
                    self._changed.wait_for(
                        lambda s=step: self._stop or s - self.version <= self.max_staleness)
                    if self._stop:
                        return
                with self._weights:
                    batch, stats = self.collector.collect(self.batch_size, policy_version=self.version)
                    state = self.collector.sampler.state_dict()
                self._ready.put(StepRollouts(step, batch, stats, state))
        except BaseException as e:  # handed to the learner thread, which raises it
            self._ready.put(e)


def drop_stale(batch: Batch, version: int, max_staleness: int,
               group_size: int) -> tuple[Batch, dict[str, float]]:
    """`batch` without the groups holding a sample more than `max_staleness` versions behind
    `version` (whole groups: the advantages compare within them), and the staleness metrics:
    `async/staleness_mean`, `async/staleness_max` (over the samples kept), `async/dropped_stale`
    (samples dropped)."""
    ages = [version - r.policy_version for r in batch.rollouts]
    groups = len(ages) // group_size
    keep = [g for g in range(groups)
            if max(ages[g * group_size:(g + 1) * group_size]) <= max_staleness]
    rows = [g * group_size + j for g in keep for j in range(group_size)]
    kept_ages = [ages[i] for i in rows]
    return batch.take(rows), {
        "async/staleness_mean": sum(kept_ages) / len(kept_ages) if kept_ages else 0.0,
        "async/staleness_max": float(max(kept_ages, default=0)),
        "async/dropped_stale": float(len(ages) - len(rows)),
    }

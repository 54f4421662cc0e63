"""RL steps per second: synchronous vs streaming rewards vs one-step-off, side by side.

1. One tiny setup for all three (model it on benchmarks/step_time.py): the tiny random Qwen2,
   synthetic code records, `--prompts` x `--generations` samples of <= `--max-new-tokens` tokens,
   one update per batch, no filtering. The reward takes real time: every completion is judged
   as a program by the code verifier in the real sandbox server on loopback, on each of the
   record's `--cases` tests (a random model never closes a code fence, so the completion is
   fenced as it stands; it fails, but every test still runs in the sandbox).
2. The same placement in every mode: the learner (this process) on CPU `--learner-cpu` with
   one torch thread; generation in a rollout worker (`generation.placement: remote`) pinned to
   `--generation-cpu`. The sandbox server may use both: judging runs beside whichever of the
   two is busy. Only the scheduling differs:
   - sync: generate everything, then score everything, then update, then sync the weights (the
     worker's groups are handed over only when the last one is done: today's loop);
   - streaming: the same, but each group is scored as soon as it has finished generating, so
     the visible reward cost is the tail after the last group (`max_staleness: 0`);
   - one-step-off: `algorithm.off_policy.max_staleness: 1`: the worker generates (and the
     sandbox judges) step t+1 while the learner updates on step t, on the other core.
3. The first `--warmup` steps of each run are not counted. Steps per second is timed steps
   over their summed `timing/step_s` (collect or wait + update + sync). Prints each mode's
   phases and its ratio to sync, last the line `ratio one-step-off/sync X.XX`.
   Target: one-step-off >= 1.4x sync, streaming > sync.

    .venv/bin/python benchmarks/async_step_time.py [--steps 6] [--prompts 8] [--generations 8]
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

MODES = ("sync", "streaming", "one-step-off")
PHASES = ("generate_s", "reward_s", "update_s", "sync_s", "wait_rollouts_s")


def completion_as_program(records: Sequence[dict[str, Any]], **_options: Any) -> list[Any]:
    """The code verifier, with each completion fenced whole as the program (point 1)."""
    from qwqrl.verifiers.code import verify_batch

    fenced = [{**r, "completion": f"```python\n{r['completion']}\n```"} for r in records]
    return verify_batch(fenced, think_opened=False)


class WholeBatch:
    """A generator whose groups all arrive when the last one has finished: sync mode's
    collection scores nothing before generation is over, as the loop before streaming did."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def generate(self, prompts: list[str], n: int, sampling: Any) -> list[Any]:
        return self.inner.generate(prompts, n, sampling)

    def generate_stream(self, prompts: list[str], n: int, sampling: Any) -> Iterator[list[Any]]:
        from qwqrl.generation.base import stream_by_prompt

        return stream_by_prompt(self.inner.generate(prompts, n, sampling), n)

    def sync_weights(self, model: Any) -> None:
        self.inner.sync_weights(model)

    def sleep(self) -> None:
        self.inner.sleep()

    def wake_up(self) -> None:
        self.inner.wake_up()


def recipe(work: Path, mode: str, args: argparse.Namespace) -> dict[str, Any]:
    return {
        "name": mode, "seed": 0, "output_dir": str(work / mode),
        "model": {"tiny": {"preset": "tiny", "seed": 0}},
        "tokenizer": {"task_instructions": False},
        "stages": [{
            "name": "rl", "kind": "rl",
            "data": {"train": [{"synthetic": "code", "options": {"n": 2000, "seed": 0, "cases": args.cases}}]},
            "rewards": {"judged": {"fn": "async_step_time:completion_as_program", "tasks": ["code"]}},
            "algorithm": {"num_generations": args.generations, "filter_zero_std": False,
                          "off_policy": {"max_staleness": 1 if mode == "one-step-off" else 0}},
            "generation": {"temperature": 1.0, "top_p": 1.0, "top_k": 0,
                           "max_new_tokens": args.max_new_tokens, "batch_size": args.generation_batch,
                           "placement": "remote",
                           "remote": {"workers": 1, "cpus": [[args.generation_cpu]]}},
            "trainer": {"lr": 5e-5, "max_steps": args.steps + args.warmup, "batch_size": args.prompts,
                        "micro_batch_size": args.prompts * args.generations},
        }],
        "logging": {"wandb": {"mode": "disabled"}},
    }


def run(work: Path, mode: str, args: argparse.Namespace) -> list[dict[str, float]]:
    """One training run in this process; its timed steps' metrics."""
    from qwqrl.pipeline import Pipeline
    from qwqrl.recipe import load_recipe

    class SyncPipeline(Pipeline):
        def _generator(self, stage: Any, policy: Any) -> Any:
            return WholeBatch(super()._generator(stage, policy))

    path = work / f"{mode}.yaml"
    path.write_text(yaml.safe_dump(recipe(work, mode, args)))
    pipeline = SyncPipeline if mode == "sync" else Pipeline
    pipeline(load_recipe(str(path), []), work).run()
    rows = [json.loads(line) for line in (work / mode / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if "timing/step_s" in r][args.warmup:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6, help="timed steps per mode")
    parser.add_argument("--warmup", type=int, default=1, help="untimed first steps per mode")
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--generations", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--generation-batch", type=int, default=16,
                        help="sequences per HF generate call in the worker (groups stream per call)")
    parser.add_argument("--cases", type=int, default=4, help="sandbox tests per completion (1-10)")
    parser.add_argument("--learner-cpu", type=int, default=0)
    parser.add_argument("--generation-cpu", type=int, default=1)
    args = parser.parse_args()

    import torch

    from qwqrl.sandbox.local import LocalSandbox

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    results: dict[str, list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp, LocalSandbox() as sandbox:  # before pinning: both CPUs
        os.environ["QWQRL_SANDBOX_URL"] = sandbox.url
        for thread in os.listdir("/proc/self/task"):  # every thread of the learner, not just this one
            os.sched_setaffinity(int(thread), {args.learner_cpu})
        torch.set_num_threads(1)
        for mode in MODES:
            results[mode] = run(Path(tmp), mode, args)
    report(results, args)


def report(results: dict[str, list[dict[str, float]]], args: argparse.Namespace) -> None:
    def mean(rows: list[dict[str, float]], key: str) -> float:
        return sum(r.get(key, 0.0) for r in rows) / len(rows)

    rate = {m: len(rows) / sum(r["timing/step_s"] for r in rows) for m, rows in results.items()}
    print(f"\nRL steps/s, {args.prompts} prompts x {args.generations} samples, <= {args.max_new_tokens} "
          f"new tokens, {args.cases} sandbox tests per sample, {args.steps} timed steps; learner on "
          f"CPU {args.learner_cpu}, rollout worker on CPU {args.generation_cpu}")
    print(f"{'mode':14s} {'steps/s':>8s} {'ratio':>6s} " + " ".join(f"{p[:-2]:>13s}" for p in PHASES))
    for mode, rows in results.items():
        phases = " ".join(f"{mean(rows, 'timing/' + p):13.3f}" for p in PHASES)
        print(f"{mode:14s} {rate[mode]:8.3f} {rate[mode] / rate['sync']:6.2f} {phases}")
    print("(phases: mean seconds per step; reward = scoring left after the last group finished "
          "generating; wait_rollouts = the learner waiting for the worker)")
    print(f"ratio streaming/sync {rate['streaming'] / rate['sync']:.2f}")
    print(f"ratio one-step-off/sync {rate['one-step-off'] / rate['sync']:.2f}")


if __name__ == "__main__":
    main()

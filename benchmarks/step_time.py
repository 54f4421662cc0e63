"""GRPO step time: our loop vs `trl.GRPOTrainer`, same tiny model, prompts, reward and shapes.

1. Both start from the same randomly initialised tiny Qwen2 and byte-level tokenizer
   (`qwqrl.tiny`), on arithmetic prompts, with the math accuracy verifier as the only reward
   (TRL gets it as a reward function, `qwqrl.verifiers.registry.reward_function("math")`).
2. Shapes: `--prompts` prompts x `--generations` samples per step, `--max-new-tokens` tokens,
   temperature 1.0, no KL, one update per batch, all samples kept (our zero-variance filter is
   off, so both do the same forward/backward work).
3. Ours runs through `qwqrl train` (DeepSpeed ZeRO-0 engine, HF generation); TRL through
   `GRPOTrainer.train`. The first step of each is warm-up and not counted.
4. Prints seconds per step for each, the ratio (ours / TRL; <= 1.0 means we are no slower) and
   our phase breakdown from metrics.jsonl.

    .venv/bin/python benchmarks/step_time.py [--steps 6] [--prompts 8] [--generations 8]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import yaml


def ours(work: Path, args: argparse.Namespace) -> tuple[list[float], dict[str, float]]:
    from qwqrl.cli import main

    recipe = {
        "name": "bench", "seed": 0, "output_dir": str(work / "ours"),
        "model": {"tiny": {"preset": "tiny", "seed": 0}},
        "tokenizer": {"task_instructions": False},
        "stages": [{
            "name": "rl", "kind": "rl",
            "data": {"train": [{"synthetic": "arithmetic", "options": {"n": 2000, "seed": 0}}]},
            "rewards": {"math": {}},
            "algorithm": {"num_generations": args.generations, "filter_zero_std": False},
            "generation": {"temperature": 1.0, "top_p": 1.0, "top_k": 0,
                           "max_new_tokens": args.max_new_tokens,
                           "batch_size": args.prompts * args.generations},
            "trainer": {"lr": 5e-5, "max_steps": args.steps + 1, "batch_size": args.prompts,
                        "micro_batch_size": args.prompts * args.generations},
        }],
        "logging": {"wandb": {"mode": "disabled"}},
    }
    path = work / "ours.yaml"
    path.write_text(yaml.safe_dump(recipe))
    assert main(["train", str(path)]) == 0
    rows = [json.loads(line) for line in (work / "ours" / "metrics.jsonl").read_text().splitlines()]
    rows = [r for r in rows if "timing/step_s" in r][1:]
    phases = {k: sum(r[k] for r in rows) / len(rows) for k in rows[0] if k.startswith("timing/")}
    return [r["timing/step_s"] for r in rows], phases


def trl(work: Path, args: argparse.Namespace) -> list[float]:
    import datasets
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from qwqrl.data.synthetic import arithmetic
    from qwqrl.tiny import build_model, build_tokenizer
    from qwqrl.verifiers.registry import reward_function

    tok = build_tokenizer()
    rows = [{"prompt": [{"role": "user", "content": r["prompt"]}], "answer": r["answer"]}
            for r in arithmetic(2000, seed=0)]
    stamps: list[float] = []

    class Clock(TrainerCallback):
        def on_step_end(self, *_a, **_k):
            stamps.append(time.perf_counter())

    config = GRPOConfig(
        output_dir=str(work / "trl"), max_steps=args.steps + 1, learning_rate=5e-5,
        per_device_train_batch_size=args.prompts * args.generations,
        num_generations=args.generations, max_completion_length=args.max_new_tokens,
        temperature=1.0, top_p=1.0, top_k=0, beta=0.0, report_to=[], use_cpu=True,
        logging_steps=1, save_strategy="no", seed=0, disable_tqdm=True)
    trainer = GRPOTrainer(model=build_model(tok), reward_funcs=[reward_function("math")],
                          args=config, train_dataset=datasets.Dataset.from_list(rows),
                          processing_class=tok, callbacks=[Clock()])
    start = time.perf_counter()
    trainer.train()
    times = [b - a for a, b in zip([start] + stamps, stamps)]
    return times[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--generations", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=80)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        ours_steps, phases = ours(work, args)
        trl_steps = trl(work, args)
    a, b = sum(ours_steps) / len(ours_steps), sum(trl_steps) / len(trl_steps)
    print(f"\nGRPO step, {args.prompts} prompts x {args.generations} samples, "
          f"<= {args.max_new_tokens} new tokens, {args.steps} timed steps")
    print(f"{'':18s} {'s/step':>8s} {'ratio':>7s}")
    print(f"{'trl.GRPOTrainer':18s} {b:8.3f} {1.0:7.2f}")
    print(f"{'qwqrl':18s} {a:8.3f} {a / b:7.2f}")
    print("\nqwqrl phases (mean s/step):")
    for k, v in sorted(phases.items()):
        print(f"  {k.removeprefix('timing/'):12s} {v:8.3f}")


if __name__ == "__main__":
    main()

"""`qwqrl demo`: the tiny two-stage run on CPU, from nothing (what `make demo` runs).

1. Train a tiny reward model on synthetic preference pairs (TRL's RewardTrainer), once.
2. Run `recipes/demo/two-stage.yaml`: cold-start SFT, stage one (math + code in the real sandbox),
   stage two (the reward model + IFEval rules, replaying stage-one data), evaluating before and
   after each stage.
3. Print the evaluation table; `runs/demo/report.md` has it with plots.
Running it again continues (or just reprints) the same run; `--fresh` starts over.

`qwqrl demo --tools` runs `recipes/demo/tools.yaml` instead: a cold start on products of large
numbers, some traces calling the `python` tool, then GRPO with the tool in the loop; its table
shows the held-out pass rate and the share of samples that called the tool, before and after RL.
Without bubblewrap the demo still runs the tiny model's programs, at a weak isolation level,
and says so in a warning line first (every other command refuses unless told otherwise).
"""
from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

from qwqrl.errors import UserError
from qwqrl.sandbox import isolation
from qwqrl.recipe import load_recipe
from qwqrl.train_cmd import add_run_arguments

DEMO_RECIPE = Path(__file__).resolve().parent.parent / "recipes" / "demo" / "two-stage.yaml"
TOOLS_RECIPE = DEMO_RECIPE.with_name("tools.yaml")

# `--fast`: a few steps per stage and small eval sets, to check the whole path quickly (CI).
FAST = ["stages.0.trainer.max_steps=20", "stages.0.stop_at.every=1000",
        "stages.0.trainer.warmup_steps=5", "stages.1.trainer.max_steps=3",
        "stages.2.trainer.max_steps=3", "stages.1.trainer.batch_size=2",
        "stages.2.trainer.batch_size=2", "stages.1.generation.max_new_tokens=48",
        "stages.2.generation.max_new_tokens=48", "eval.max_new_tokens=48",
        "eval.sets.0.options.n=12", "eval.sets.1.options.n=6", "eval.sets.2.options.n=6",
        "eval.sets.3.options.n=6"]

# `--tools --fast`: the tool demo's whole path (cold start, a tool-calling RL step, evaluations
# with the tool) in a minute or two.
TOOLS_FAST = ["stages.0.trainer.max_steps=20", "stages.0.trainer.warmup_steps=5",
              "stages.0.trainer.batch_size=16", "stages.0.trainer.micro_batch_size=16",
              "stages.1.trainer.max_steps=2", "stages.1.trainer.batch_size=2",
              "stages.1.algorithm.num_generations=4", "stages.1.generation.max_new_tokens=96",
              "eval.sets.0.options.n=8", "eval.max_new_tokens=96"]

RM_PAIRS, RM_STEPS, RM_BATCH = 1600, 100, 16  # 88.8% held-out pair accuracy (tests/rm)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="the tiny two-stage demo on CPU (builds everything locally)")
    add_run_arguments(p)
    p.add_argument("--recipe", default=None, help=f"demo recipe (default: {DEMO_RECIPE}, with "
                                                  f"--tools {TOOLS_RECIPE})")
    p.add_argument("--tools", action="store_true",
                   help="the tool-use demo: RL with the python tool on products of large numbers")
    p.add_argument("--fast", action="store_true", help="a few steps per stage (a smoke test)")
    p.add_argument("--fresh", action="store_true", help="delete the demo's run directory first")
    p.set_defaults(func=run)


def build_reward_model(out: Path, seed: int, steps: int = RM_STEPS) -> None:
    """A tiny Bradley-Terry RM on synthetic preference pairs (the stage-two general reward)."""
    from qwqrl.rm.synthetic import make_preference_pairs
    from qwqrl.rm.train import train_reward_model
    from qwqrl.tiny import build_reward_model as tiny_rm, build_tokenizer

    tok = build_tokenizer()
    print(f"training the demo reward model on {RM_PAIRS} synthetic preference pairs -> {out}")
    train_reward_model(make_preference_pairs(RM_PAIRS, seed=seed), tiny_rm(tok, seed=seed), tok,
                       out, steps=steps, lr=1e-3, batch_size=RM_BATCH, seed=seed)


def run(args: argparse.Namespace) -> int:
    # Everything the demo needs is built locally: never reach for a model hub.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    isolation.allow_weak_from_args(args)
    if shutil.which("bwrap") is None and not isolation.weak_allowed():
        print(f"warning: bubblewrap is not installed, so the demo's code sandbox runs at a weak isolation "
              f"level: {isolation.WEAK_EXPOSURE}. The programs come from a tiny local model; install "
              f"bubblewrap (`{isolation.INSTALL_BWRAP}`) before running anything else.", flush=True)
        os.environ[isolation.ALLOW_WEAK_ENV] = "1"
    recipe_path = args.recipe or str(TOOLS_RECIPE if args.tools else DEMO_RECIPE)
    fast = TOOLS_FAST if args.tools else FAST
    overrides = (fast if args.fast else []) + list(args.overrides)
    if args.fast:
        overrides.append(f"name={'demo-tools' if args.tools else 'demo'}-fast")
    if args.wandb:
        overrides.append(f"logging.wandb.mode={args.wandb}")
    recipe = load_recipe(recipe_path, overrides)
    run_dir = Path(recipe.output_dir or Path("runs") / recipe.name)
    if args.fresh and run_dir.exists():
        shutil.rmtree(run_dir)
    rm_dir = run_dir / "reward_model"
    if not args.tools and not (rm_dir / "config.json").exists():
        build_reward_model(rm_dir, recipe.seed, steps=10 if args.fast else RM_STEPS)
    from qwqrl.pipeline import Pipeline
    from qwqrl.report import format_table
    from qwqrl.train_cmd import parse_stages

    resume = args.resume or (run_dir / "progress.json").exists()
    evals = Pipeline(recipe, Path(recipe_path).parent, resume=resume,
                     only_stages=parse_stages(args.stages, len(recipe.stages))).run()
    if not evals:
        raise UserError("the demo produced no evaluation (its recipe has no eval sets)")
    print(format_table(evals))
    print(f"report with plots: {run_dir / 'report.md'}")
    return 0

"""`qwqrl train RECIPE`: run a recipe's stages (single process, torchrun, deepspeed or accelerate)."""
from __future__ import annotations

import argparse
from pathlib import Path

from qwqrl.errors import UserError
from qwqrl.recipe import load_recipe
from qwqrl.sandbox.isolation import add_allow_weak_argument, allow_weak_from_args


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="run a recipe (all stages, or a subset)")
    add_run_arguments(p)
    p.add_argument("recipe", help="recipe YAML")
    p.set_defaults(func=run)


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a recipe key, e.g. stages.0.trainer.lr=1e-6 (repeatable)")
    p.add_argument("--stages", default=None, metavar="N[,M]",
                   help="run only these stages (1-based, e.g. `2` or `2,3`); earlier ones must "
                        "have finished in this run directory, or set the stage's init_from")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in the recipe's output directory where it stopped")
    p.add_argument("--wandb", choices=["online", "offline", "disabled"], default=None,
                   help="override logging.wandb.mode")
    add_allow_weak_argument(p)


def parse_stages(text: str | None, count: int) -> list[int] | None:
    if text is None:
        return None
    try:
        chosen = sorted({int(x) - 1 for x in text.split(",") if x.strip()})
    except ValueError:
        raise UserError(f"--stages {text!r}: expected stage numbers like 2 or 2,3") from None
    bad = [i + 1 for i in chosen if not 0 <= i < count]
    if bad or not chosen:
        raise UserError(f"--stages {text!r}: the recipe has stages 1..{count}")
    return chosen


def run(args: argparse.Namespace) -> int:
    allow_weak_from_args(args)
    overrides = list(args.overrides)
    if args.wandb:
        overrides.append(f"logging.wandb.mode={args.wandb}")
    recipe = load_recipe(args.recipe, overrides)
    only = parse_stages(args.stages, len(recipe.stages))
    from qwqrl.pipeline import Pipeline

    from qwqrl.report import format_table

    evals = Pipeline(recipe, Path(args.recipe).parent, resume=args.resume, only_stages=only).run()
    if evals:
        print(format_table(evals))
    return 0

"""`qwqrl recipe check FILE`: validate a recipe (and its data files) without running it."""
from __future__ import annotations

import argparse

from qwqrl.recipe import explain, load_recipe


def add_parser(sub: argparse._SubParsersAction) -> None:
    recipe = sub.add_parser("recipe", help="work with recipe files")
    cmds = recipe.add_subparsers(dest="recipe_command", metavar="ACTION", required=True)
    check = cmds.add_parser("check", help="validate a recipe without running it")
    check.add_argument("file", nargs="?", help="recipe YAML")
    check.add_argument("--set", dest="overrides", action="append", default=[],
                       metavar="KEY=VALUE", help="override a key, e.g. stages.0.trainer.lr=1e-6")
    check.add_argument("--explain", action="store_true", help="list every recipe field and exit")
    check.set_defaults(func=run_check)


def run_check(args: argparse.Namespace) -> int:
    if args.explain:
        print("\n".join(explain()))
        return 0
    if not args.file:
        from qwqrl.errors import UserError
        raise UserError("recipe check: give a recipe FILE (or --explain)")
    recipe = load_recipe(args.file, args.overrides)
    stages = ", ".join(f"{s.name} ({s.kind}, {s.trainer.max_steps} steps)" for s in recipe.stages)
    print(f"ok: {args.file}: {recipe.name}: {stages}")
    converters = sorted({src.converter for stage in recipe.stages for src in stage.data.train
                         if src.converter} | {s.converter for s in recipe.eval.sets if s.converter})
    if converters:
        print(f"converters dry-run on their fixture rows: {', '.join(converters)}")
    return 0

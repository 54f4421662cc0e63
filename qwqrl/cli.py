"""The `qwqrl` command line. Each subcommand lives in the module that does the work.

Exit codes: 0 ok, 2 a user error (the message says what and where), 1 an internal error.
"""
from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import threading

from qwqrl import __version__
from qwqrl.errors import UserError

# Modules exposing `add_parser(subparsers)`; each sets `func` on its parser.
COMMANDS = [
    "qwqrl.sandbox.cli",
    "qwqrl.recipe_cmd",
    "qwqrl.train_cmd",
    "qwqrl.demo",
    "qwqrl.eval_cmd",
    "qwqrl.rm.cli",
    "qwqrl.score",
    "qwqrl.rehearsal.command",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qwqrl", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"qwqrl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(name).add_parser(sub)
    return parser


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if threading.current_thread() is threading.main_thread():
        # SIGTERM (a scheduler, `kill`) unwinds like Ctrl-C, so services started with `with`
        # (the local sandbox, reward-model servers) are stopped instead of orphaned.
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        code = int(args.func(args) or 0)
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # a rank of a launch: leave the group
            from qwqrl.distributed import shutdown
            shutdown()
        return code
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

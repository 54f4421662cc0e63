"""`qwqrl sandbox serve`: run one sandbox replica (see docs/sandbox.md for fleets)."""
from __future__ import annotations

import argparse

from qwqrl.errors import UserError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("sandbox", help="the code-execution sandbox service")
    sub = parser.add_subparsers(dest="sandbox_command", metavar="ACTION", required=True)
    serve = sub.add_parser("serve", help="serve /v1/run, /v1/evaluate, /healthz, /v1/info, /metrics")
    from qwqrl.sandbox.server import add_arguments

    add_arguments(serve)
    serve.set_defaults(func=_serve)


def _serve(args: argparse.Namespace) -> int:
    from qwqrl.sandbox.server import serve

    if not 0 < args.port < 65536:
        raise UserError(f"--port: expected 1..65535, got {args.port}")
    try:
        code = serve(args)
    except ValueError as e:
        raise UserError(str(e)) from None
    if code == 3:
        raise UserError("the sandbox server did not start (see the log above)")
    return code

"""`qwqrl rm serve` and `qwqrl rm train`: a reward model over HTTP, or a new one from pairs."""
from __future__ import annotations

import argparse

from qwqrl.errors import UserError
from qwqrl.verifiers.reward_model import NORMALIZATIONS


def add_parser(sub: argparse._SubParsersAction) -> None:
    rm = sub.add_parser("rm", help="reward models: serve one, train one")
    cmds = rm.add_subparsers(dest="rm_command", metavar="ACTION", required=True)

    serve = cmds.add_parser("serve", help="serve a reward model over HTTP (POST /v1/score)")
    serve.add_argument("--model", required=True, help="reward model folder (or hub id)")
    serve.add_argument("--host", default="127.0.0.1", help="bind address (default: loopback)")
    serve.add_argument("--port", type=int, default=8100)
    serve.add_argument("--device", default="cpu", help="e.g. cpu, cuda:1")
    serve.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], default=None,
                       help="weights dtype (default: the checkpoint's)")
    serve.add_argument("--batch-size", type=int, default=16)
    serve.add_argument("--max-length", type=int, default=4096, help="tokens per (prompt, answer)")
    serve.add_argument("--normalize", choices=NORMALIZATIONS, default="sigmoid",
                       help="how `scores` are normalized per request (`raw` is always returned)")
    serve.set_defaults(func=run_serve)

    train = cmds.add_parser("train", help="train a Bradley-Terry reward model from pairs")
    train.add_argument("pairs", help="JSONL rows with prompt, chosen, rejected")
    train.add_argument("-o", "--output", required=True, help="folder to write the reward model to")
    base = train.add_mutually_exclusive_group(required=True)
    base.add_argument("--base", help="model folder (or hub id) to start from")
    base.add_argument("--tiny", metavar="PRESET", help="start from a random qwqrl.tiny model")
    train.add_argument("--epochs", type=float, default=1.0)
    train.add_argument("--steps", type=int, default=None, help="overrides --epochs")
    train.add_argument("--lr", type=float, default=1e-4,
                       help="learning rate (1e-4; a --tiny model from scratch wants about 1e-3)")
    train.add_argument("--batch-size", type=int, default=16, help="pairs per step")
    train.add_argument("--max-length", type=int, default=1024, help="tokens per (prompt, answer)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    train.set_defaults(func=run_train)


def run_serve(args: argparse.Namespace) -> int:
    from qwqrl.rm.serve import serve
    from qwqrl.verifiers.reward_model import RewardModelScorer

    try:
        scorer = RewardModelScorer(args.model, device=args.device, batch_size=args.batch_size,
                                   max_length=args.max_length, normalize=args.normalize,
                                   dtype=args.dtype)
    except (OSError, ValueError) as e:
        raise UserError(f"rm serve: cannot use reward model {args.model}: {e}") from e
    print(f"serving {args.model} on http://{args.host}:{args.port}", flush=True)
    serve(scorer, args.model, args.host, args.port)
    return 0


def run_train(args: argparse.Namespace) -> int:
    from qwqrl.rm.train import load_pairs, train_reward_model

    pairs = load_pairs(args.pairs)  # before building any model: bad data fails fast
    tokenizer = None
    base = args.base
    if args.tiny:
        from qwqrl.tiny import QWEN2_PRESETS, build_reward_model, build_tokenizer

        if args.tiny not in QWEN2_PRESETS:
            raise UserError(f"--tiny: unknown preset {args.tiny!r}; one of {sorted(QWEN2_PRESETS)}")
        tokenizer = build_tokenizer()
        base = build_reward_model(tokenizer, args.tiny, seed=args.seed)
    out = train_reward_model(pairs, base, tokenizer, args.output, epochs=args.epochs,
                             steps=args.steps, lr=args.lr, batch_size=args.batch_size,
                             seed=args.seed, max_length=args.max_length, overwrite=args.overwrite)
    print(f"reward model saved to {out}")
    return 0

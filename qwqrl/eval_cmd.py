"""`qwqrl eval CHECKPOINT --data FILE`: held-out pass rates of a checkpoint, judged by the
same verifiers the rewards use (a sandbox is started for code records when none is given)."""
from __future__ import annotations

import argparse
import contextlib
import json
from pathlib import Path

from qwqrl.errors import UserError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate a checkpoint on held-out records")
    p.add_argument("checkpoint", help="an HF model folder, e.g. runs/x/checkpoints/stage2/final")
    p.add_argument("--data", action="append", required=True, metavar="FILE",
                   help="records (JSONL/JSON/Parquet) in the record contract; repeatable")
    p.add_argument("--samples", type=int, default=1, help="samples per prompt (avg@k)")
    p.add_argument("--temperature", type=float, default=0.0, help="0: greedy (default)")
    p.add_argument("--max-new-tokens", type=int, default=1024)
    p.add_argument("--rm", default=None, help="a reward model folder, to score general records")
    p.add_argument("--no-instructions", action="store_true",
                   help="do not append the task's answer-format instruction to prompts")
    p.add_argument("-o", "--output", default=None, help="write the metrics as JSON here")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from functools import partial

    from qwqrl.chat_template import opens_think
    from qwqrl.config import DataSource, EvalConfig, ModelConfig, TokenizerConfig
    from qwqrl.data.prompts import render_prompt
    from qwqrl.data.records import load_source
    from qwqrl.distributed import init_distributed
    from qwqrl.evaluation import evaluate
    from qwqrl.models import load_policy, load_tokenizer

    if not Path(args.checkpoint).is_dir():
        raise UserError(f"{args.checkpoint}: not a model folder")
    records = [r for path in args.data for r in load_source(DataSource(path=path), Path.cwd())]
    dist = init_distributed()
    model_cfg = ModelConfig(path=args.checkpoint)
    tok = load_tokenizer(TokenizerConfig(chat_template="model"), model_cfg)
    model = load_policy(model_cfg, tok, dist.device)
    think = opens_think(tok)
    render = partial(render_prompt, tok, instructions=not args.no_instructions)
    cfg = EvalConfig(samples=args.samples, temperature=args.temperature)
    with contextlib.ExitStack() as stack:
        client = None
        if any(r["task"] == "code" for r in records):
            from qwqrl.sandbox.local import open_sandbox

            client = open_sandbox(stack)
        rm = None
        if args.rm:
            from qwqrl.verifiers.reward_model import RewardModelScorer
            rm = RewardModelScorer(args.rm, device=str(dist.device), think_opened=think)
        metrics = evaluate(model, tok, records, cfg, args.max_new_tokens, render=render,
                           sandbox_client=client, reward_model=rm, think_opened=think)
    for key, value in metrics.items():
        print(f"{key:24s} {value:.4f}")
    if args.output:
        Path(args.output).write_text(json.dumps(metrics, indent=2))
    return 0

"""`qwqrl eval`: a checkpoint (or completions made elsewhere) on named benchmark suites.

    qwqrl eval CKPT --suite aime24,livecodebench,ifeval -o out/       # generate, judge, measure
    qwqrl eval CKPT --data held_out.jsonl                             # records of the contract
    qwqrl eval --suite ifeval --data input_data.jsonl --responses input_response_data.jsonl -o out/

1. Suites (`qwqrl.eval_suites`) bring their data, QwQ's sampling settings and their metrics;
   `--samples`, `--temperature`, ... replace a suite's settings. `--data FILE` replaces a suite's
   default source (one file per suite, in order); without `--suite`, each task found in the
   files' records becomes a suite of its own, named after the task.
2. Generation: vLLM when it is installed (`--backend vllm`, with training's engine settings:
   `--tp`, `--max-model-len`, `--yarn`), else HF `generate` (CPU). Under `torchrun` every rank
   samples its share of the problems; rank 0 judges and writes.
3. `--responses FILE` judges completions made elsewhere instead (see `qwqrl.eval_responses`).
4. Judging uses the training verifiers: a sandbox is started for code unless
   `$QWQRL_SANDBOX_URL` names one; general prompts need a reward model (`--rm`).
5. Outputs (`qwqrl.eval_output`): the table on stdout; with `-o DIR`, `eval.json`,
   `samples.jsonl` and, for IFEval, the official script's result files.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
from pathlib import Path
from typing import Any

from qwqrl.errors import UserError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate a checkpoint (or given completions) on benchmarks")
    p.add_argument("checkpoint", nargs="?", help="an HF model folder, e.g. runs/x/checkpoints/stage2/final")
    p.add_argument("--suite", default=None, metavar="NAMES",
                   help="comma-separated suites: aime24, aime25, math500, livecodebench, ifeval, "
                        "general, tiny-math, tiny-code, tiny-ifeval, tiny-general")
    p.add_argument("--data", action="append", default=[], metavar="FILE",
                   help="a suite's data in its source's schema (one per suite, in order); "
                        "without --suite, records of the contract (repeatable)")
    p.add_argument("--responses", default=None, metavar="FILE",
                   help="judge these completions instead of generating (JSONL: prompt/response "
                        "as IFEval's script reads them, or id/completion)")
    p.add_argument("--no-think-opened", dest="think_opened", action="store_false",
                   help="with --responses: a `completion` without think tags is judged whole "
                        "(default: it is unfinished, as `qwqrl score` judges it)")
    p.add_argument("--limit", type=int, default=None, help="at most this many problems per suite")
    p.add_argument("--samples", type=int, default=None, help="k samples per problem (suite's own)")
    p.add_argument("--temperature", type=float, default=None, help="0: greedy (suite's: 0.6)")
    p.add_argument("--top-p", type=float, default=None)
    p.add_argument("--top-k", type=int, default=None)
    p.add_argument("--max-new-tokens", type=int, default=None, help="suite's: 32768")
    p.add_argument("--since", default=None, metavar="DATE",
                   help="code suites: first contest date kept (YYYY-MM-DD; '' for no bound)")
    p.add_argument("--until", default=None, metavar="DATE", help="code suites: first date left out")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--backend", choices=("vllm", "hf"), default=None,
                   help="default: vllm when it is installed, else hf")
    p.add_argument("--recipe", default=None, metavar="FILE",
                   help="take the engine settings the run trained with (its last RL stage's "
                        "vLLM tp / max model length / memory share, the model's rope scaling)")
    p.add_argument("--tp", type=int, default=None, help="vLLM tensor-parallel size (1)")
    p.add_argument("--max-model-len", type=int, default=None, help="vLLM context length")
    p.add_argument("--gpu-memory-utilization", type=float, default=None, help="vLLM (0.9)")
    p.add_argument("--yarn", type=float, default=None, metavar="FACTOR",
                   help="YaRN rope scaling factor over 32,768 positions (QwQ: 4 for 131,072)")
    p.add_argument("--batch-size", type=int, default=64, help="HF backend: sequences per generate")
    p.add_argument("--rm", default=None, help="a reward model folder, to score general prompts")
    p.add_argument("--no-instructions", action="store_true",
                   help="do not append the task's answer-format instruction to prompts")
    p.add_argument("-o", "--output", default=None, metavar="DIR",
                   help="write eval.json, samples.jsonl (and IFEval's result files) here")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from qwqrl.eval_output import eval_json, official_ifeval, sample_lines, table, write_atomic
    from qwqrl.eval_responses import attach, read_responses
    from qwqrl.evaluation import generate_completions, judge, suite_result, suite_sampling

    _check_args(args)
    if args.output:
        Path(args.output).mkdir(parents=True, exist_ok=True)
    suites = _load_suites(args)
    results = []
    with contextlib.ExitStack() as stack:
        if args.responses:
            kind, rows = read_responses(args.responses)
            think_opened = args.think_opened and kind == "ours"
            judging = _judging(stack, suites, args, think_opened, device="cpu")
            for data in suites:
                completions = attach(data, kind, rows, args.responses)
                verdicts = judge(data.suite.task, data.records, completions, **judging)
                results.append(suite_result(data, completions, verdicts))
            settings = {"responses": args.responses, "format": kind}
        else:
            generator, render, think_opened, dist, settings = _generator(args)
            judging = _judging(stack, suites, args, think_opened, device=str(dist.device),
                               main=dist.is_main)
            for data in suites:
                completions = generate_completions(generator, data.records, render, data.suite.samples,
                                                   suite_sampling(data, args.seed))
                if dist.is_main:
                    verdicts = judge(data.suite.task, data.records, completions, **judging)
                    results.append(suite_result(data, completions, verdicts))
            if not dist.is_main:
                return 0
    settings.update(think_opened=think_opened, seed=args.seed, rm=args.rm)
    ifeval = [r for r in results if r.data.suite.task == "ifeval"]
    for res in ifeval:
        print(official_ifeval(res, args.output, "" if len(ifeval) == 1 else f"{res.name}."))
    print(("\n" if ifeval else "") + table(results))
    if args.output:
        out = Path(args.output)
        write_atomic(out / "samples.jsonl", sample_lines(results))
        write_atomic(out / "eval.json", [json.dumps(eval_json(results, settings), indent=2) + "\n"])
        print(f"wrote {out / 'eval.json'} and {out / 'samples.jsonl'}")
    return 0


def _check_args(args: argparse.Namespace) -> None:
    if args.responses is None and args.checkpoint is None:
        raise UserError("eval: give a CHECKPOINT to generate with, or --responses FILE to judge")
    if args.responses is not None and args.checkpoint is not None:
        raise UserError("eval: give a CHECKPOINT or --responses, not both")
    if args.checkpoint is not None and not Path(args.checkpoint).is_dir():
        raise UserError(f"eval: {args.checkpoint} is not a model folder")
    if args.backend == "vllm" and args.responses is None and importlib.util.find_spec("vllm") is None:
        raise UserError("eval --backend vllm: vLLM is not installed (pip install 'qwqrl[vllm]' "
                        "on a CUDA machine); or use --backend hf")
    if args.output and Path(args.output).suffix == ".json":
        raise UserError(f"eval: -o names a folder (eval.json and samples.jsonl go in it), "
                        f"not a file: {args.output}")
    if args.suite is None and not args.data:
        raise UserError("eval: name suites with --suite, or give records with --data")
    for flag in ("samples", "limit", "max_new_tokens", "top_k", "tp"):
        value = getattr(args, flag)
        if value is not None and value < (0 if flag == "top_k" else 1):
            raise UserError(f"eval: --{flag.replace('_', '-')} must be positive, got {value}")


def _load_suites(args: argparse.Namespace) -> list[Any]:
    """The suites to run, with their records and the command line's settings applied."""
    from qwqrl.config import TASKS, DataSource
    from qwqrl.data.records import load_source
    from qwqrl.eval_suites import Suite, SuiteData, get_suites, load_suite

    overrides = dict(samples=args.samples, date_from=args.since, date_to=args.until,
                     temperature=args.temperature, top_p=args.top_p, top_k=args.top_k,
                     max_new_tokens=args.max_new_tokens)
    if args.suite is not None:
        suites = get_suites(args.suite)
        if args.data and len(args.data) != len(suites):
            raise UserError(f"eval: {len(args.data)} --data files for {len(suites)} suites; give "
                            f"one per suite, in the order of --suite")
        files = args.data or [None] * len(suites)
        try:
            return [load_suite(s.with_overrides(**overrides), Path.cwd(), data=f, limit=args.limit)
                    for s, f in zip(suites, files)]
        except ValueError as e:  # a sampling override out of range
            raise UserError(f"eval: {e}") from None
    records = [r for path in args.data
               for r in load_source(DataSource(path=path, limit=args.limit), Path.cwd())]
    out = []
    for task in TASKS:
        mine = [r for r in records if r["task"] == task]
        if mine:
            suite = Suite(task, task, task, None, None, samples=1).with_overrides(**overrides)
            out.append(SuiteData(suite, mine, ",".join(args.data)))
    return out


def _judging(stack: contextlib.ExitStack, suites: list[Any], args: argparse.Namespace,
             think_opened: bool, device: str, main: bool = True) -> dict[str, Any]:
    """Verifier services: a sandbox for code suites, the reward model for general ones."""
    from qwqrl.score import SandboxProvider

    tasks = {s.suite.task for s in suites}
    out: dict[str, Any] = {"think_opened": think_opened, "sandbox_client": None, "reward_model": None}
    if "code" in tasks and main:
        out["sandbox_client"] = SandboxProvider(stack).client()
    if "general" in tasks and args.rm and main:
        from qwqrl.verifiers.reward_model import RewardModelScorer

        out["reward_model"] = RewardModelScorer(args.rm, device=device, think_opened=think_opened)
    elif "general" in tasks:
        raise UserError("eval: general prompts are scored by a reward model: give it with --rm")
    return out


def engine_settings(args: argparse.Namespace) -> dict[str, Any]:
    """vLLM engine settings: the command line's, else the recipe's (as training ran), else
    defaults. `rope_scaling` is None or the dict `ModelConfig.rope_scaling` dumps."""
    from qwqrl.config import RLStage, RopeScaling

    tp, max_len, memory, rope = None, None, None, None
    if args.recipe:
        from qwqrl.recipe import load_recipe

        recipe = load_recipe(args.recipe, check_files=False)
        rl = [s for s in recipe.stages if isinstance(s, RLStage)]
        if rl:
            vllm = rl[-1].generation.vllm
            tp, max_len, memory = vllm.tensor_parallel_size, vllm.max_model_len, vllm.gpu_memory_utilization
        rope = recipe.model.rope_scaling
    if args.yarn:
        rope = RopeScaling(factor=args.yarn)
    return {"tensor_parallel_size": args.tp or tp or 1, "max_model_len": args.max_model_len or max_len,
            "gpu_memory_utilization": args.gpu_memory_utilization or memory or 0.9,
            "rope_scaling": rope.model_dump() if rope else None}


def _generator(args: argparse.Namespace) -> tuple[Any, Any, bool, Any, dict[str, Any]]:
    """(generator, render, think_opened, dist, settings) for the checkpoint."""
    from functools import partial

    from qwqrl.chat_template import opens_think
    from qwqrl.config import ModelConfig, RopeScaling, TokenizerConfig
    from qwqrl.data.prompts import render_prompt
    from qwqrl.distributed import init_distributed
    from qwqrl.generation import make_generator
    from qwqrl.models import load_policy, load_tokenizer

    backend = args.backend or ("vllm" if importlib.util.find_spec("vllm") else "hf")
    engine = engine_settings(args)
    rope = engine["rope_scaling"]
    dist = init_distributed()
    model_cfg = ModelConfig(path=args.checkpoint, rope_scaling=RopeScaling(**rope) if rope else None)
    tok = load_tokenizer(TokenizerConfig(chat_template="model"), model_cfg)
    if backend == "vllm":
        opts: dict[str, Any] = {k: v for k, v in engine.items() if k != "rope_scaling"}
        if rope is not None:  # vLLM reads the checkpoint's config; this replaces its rope entry
            opts["hf_overrides"] = {"rope_scaling": rope}
        try:
            generator = make_generator("vllm", args.checkpoint, tok, enable_sleep_mode=False,
                                       seed=args.seed, **opts)
        except ImportError as e:
            raise UserError(f"eval --backend vllm: {e}; or use --backend hf") from None
    else:
        model = load_policy(model_cfg, tok, dist.device).eval()
        generator = make_generator("hf", model, tok, batch_size=args.batch_size)
    render = partial(render_prompt, tok, instructions=not args.no_instructions)
    settings = {"checkpoint": os.path.abspath(args.checkpoint), "backend": backend, **engine,
                "data_parallel": dist.world_size, "instructions": not args.no_instructions}
    return generator, render, opens_think(tok), dist, settings

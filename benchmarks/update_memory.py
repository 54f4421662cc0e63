"""Update memory and speed: chunked vs naive log-probs, padding-free vs padded micro-batches.

1. Memory: one forward + backward of the policy's log-prob loss for a Qwen2 with Qwen2.5's
   vocabulary (151,936) and a small width, on one sequence of `--tokens` completion tokens.
   "naive" is the code before chunking (the model's logits over the completion, divided by the
   temperature, `selective_log_softmax`); "chunked" is `sequences.completion_logprobs` (hidden
   states through the LM head `trainer.logprob_chunk_size` tokens at a time, recomputed in
   backward). Peak resident memory of the whole process (ru_maxrss), each run in a fresh
   process; the same at `--slope-tokens` and twice that gives the per-token slope used to
   estimate T = 32,768. The address space is capped at the memory free on the machine; a
   variant that runs out is reported so, and its ratio uses the slope's estimate.
2. Throughput: update tokens/s (forward + backward of every micro-batch) on 64 sequences whose
   completion lengths follow a long tail (most short, a few at the cap), "padded" (the layout
   before packing: each micro-batch's rows padded to its longest) vs "padding-free" (one packed
   row per micro-batch), each run in its own process, alternating, the best of `--repeats` kept.
   The micro-batches are formed as the code before packing formed them (`Learner.micro_batches`
   since the trainer core: sorted by length, then split) in two ways:
   - same rows: `micro_batch_size` 8 (the schema default) sequences per micro-batch for both
     layouts, so the micro-batches are identical and only the padding differs;
   - same token budget: one longest sequence's tokens per micro-batch, counted as rows x longest
     row for "padded" (the old rule) and as real tokens for "padding-free" (the new one).
   The model has a small vocabulary, so the backbone's work, which padding inflates, dominates.
   "CPU s" is the run's process CPU time: a steadier measure of the work than wall time when
   other jobs share the machine (the ratios use wall time; run it on a quiet machine).
3. Optionally (`--chunk-sweep`) the chunked pass's time and memory for several chunk sizes,
   which chose the default `logprob_chunk_size`.

Ends with `memory ratio naive/chunked X.XX` and `throughput ratio padding-free/padded Y.YY`, the
latter for the same rows (the same-budget ratio is printed above it).

    .venv/bin/python benchmarks/update_memory.py [--tokens 8192] [--slope-tokens 2048] [--repeats 2]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

QWEN_VOCAB = 151_936
SMALL_WIDTH = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                   intermediate_size=128)
THROUGHPUT_MODEL = dict(vocab_size=4096, hidden_size=256, num_hidden_layers=4, num_attention_heads=4,
                        num_key_value_heads=2, intermediate_size=1024)
PROMPT = 32
SEQUENCES, CAP = 64, 2048
ROWS = 8  # micro_batch_size's default: sequences per micro-batch when no token budget is set


def model(vocab_size: int, **shape: int):
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from qwqrl.models import attention_implementation

    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=vocab_size, tie_word_embeddings=True, max_position_embeddings=40_000,
                         attn_implementation=attention_implementation("sdpa"), **shape)
    return Qwen2ForCausalLM(config).float()


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cap_address_space(margin_gb: float = 1.5) -> None:
    """Fail with MemoryError instead of waking the OOM killer on a shared machine."""
    fields = dict(line.split(":", 1) for line in open("/proc/meminfo"))
    available = int(fields["MemAvailable"].split()[0]) * 1024
    status = dict(line.split(":", 1) for line in open("/proc/self/status"))
    current = int(status["VmSize"].split()[0]) * 1024
    limit = current + available - int(margin_gb * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def memory_run(variant: str, tokens: int, chunk_size: int | None) -> dict[str, float]:
    """One forward + backward in this process; peak RSS before and after it."""
    import torch

    cap_address_space()

    from qwqrl.algorithms import selective_log_softmax
    from qwqrl.sequences import completion_logprobs, pack

    torch.manual_seed(0)
    m = model(QWEN_VOCAB, **SMALL_WIDTH)
    ids = torch.randint(0, QWEN_VOCAB, (PROMPT + tokens,)).tolist()
    batch = pack([ids[:PROMPT]], [ids[PROMPT:]], 0, torch.device("cpu"))
    before = rss_mb()
    start = time.perf_counter()
    if variant == "naive":
        out = m(input_ids=batch.input_ids, position_ids=batch.position_ids,
                logits_to_keep=tokens + 1, use_cache=False)
        logits = out.logits[:, :-1, :] / 0.7
        lp = selective_log_softmax(logits, batch.completion_ids)
        del out, logits
    else:
        lp, _ = completion_logprobs(m, batch, 0.7, chunk_size=chunk_size)
    (-lp.mean()).backward()
    return {"before_mb": before, "peak_mb": rss_mb(), "seconds": time.perf_counter() - start}


def lengths() -> list[int]:
    """64 completion lengths: log-normal around 150 tokens, clipped to [16, CAP], 4 at the cap."""
    import random
    rng = random.Random(0)
    out = [min(CAP, max(16, int(rng.lognormvariate(5.0, 0.9)))) for _ in range(SEQUENCES - 4)]
    return sorted(out + [CAP] * 4)


def throughput_run(variant: str, split: str) -> dict[str, float]:
    """Forward + backward of every micro-batch of the long-tailed batch, in this process."""
    import torch

    from qwqrl.learner import micro_batches
    from qwqrl.sequences import completion_logprobs, pack

    torch.manual_seed(0)
    m = model(**THROUGHPUT_MODEL)
    gen = torch.Generator().manual_seed(1)
    comps = [torch.randint(0, 4096, (n,), generator=gen).tolist() for n in lengths()]
    prompts = [torch.randint(0, 4096, (PROMPT,), generator=gen).tolist() for _ in comps]
    padded = variant == "padded"
    total = [len(p) + len(c) for p, c in zip(prompts, comps)]
    micro = (micro_batches(total, size=ROWS, budget=None) if split == "rows" else
             micro_batches(total, size=SEQUENCES, budget=PROMPT + CAP, padded=padded))
    warm = pack(prompts[:2], comps[:2], 0, torch.device("cpu"), padding_free=not padded)
    completion_logprobs(m, warm, 1.0)[0].sum().backward()
    start, cpu = time.perf_counter(), time.process_time()
    computed = 0
    for mb in micro:
        batch = pack([prompts[i] for i in mb], [comps[i] for i in mb], 0, torch.device("cpu"),
                     padding_free=not padded)
        computed += batch.input_ids.numel()
        lp, _ = completion_logprobs(m, batch, 1.0)
        (-lp.sum() / sum(total)).backward()
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {"seconds": seconds, "cpu_seconds": cpu, "tokens": sum(total), "computed": computed,
            "micro_batches": len(micro)}


def child(args: list[str]) -> dict[str, float]:
    """Run this script's `--child` mode in a fresh process; its last stdout line is JSON."""
    env = {**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(os.path.abspath(__file__)))}
    proc = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True,
                          env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{args} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=8192)
    parser.add_argument("--slope-tokens", type=int, default=2048)
    parser.add_argument("--chunk-sweep", type=int, nargs="*", default=[])
    parser.add_argument("--repeats", type=int, default=2, help="throughput runs per variant (best kept)")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, variant, *rest = args.child
        if kind == "memory":
            try:
                result = memory_run(variant, int(rest[0]), int(rest[1]) if rest[1] != "none" else None)
            except (MemoryError, RuntimeError) as e:  # over the cap: report the cap, not a crash
                if "allocate" not in str(e):
                    raise
                result = {"oom": True, "cap_mb": resource.getrlimit(resource.RLIMIT_AS)[0] / 2**20,
                          "peak_mb": rss_mb()}
        else:
            result = throughput_run(variant, rest[0])
        print(json.dumps(result))
        return

    peak = memory(args.tokens, args.slope_tokens, args.chunk_sweep)
    ratios = throughput(args.repeats)
    print(f"throughput ratio padding-free/padded, same token budget {ratios['budget']:.2f}")
    print(f"memory ratio naive/chunked {peak['naive'] / peak['chunked']:.2f}")
    print(f"throughput ratio padding-free/padded {ratios['rows']:.2f}")


def memory(tokens_at: int, slope_tokens: int, chunk_sweep: list[int]) -> dict[str, float]:
    """The memory table; each variant's peak at `tokens_at` (estimated from its slope if it ran out)."""
    from qwqrl.sequences import DEFAULT_CHUNK_SIZE

    print(f"memory: Qwen2 vocab {QWEN_VOCAB}, {SMALL_WIDTH}, prompt {PROMPT}, temperature 0.7, "
          f"chunk {DEFAULT_CHUNK_SIZE}")
    print(f"{'variant':<10}{'T':>8}{'peak RSS MB':>14}{'before MB':>12}{'seconds':>10}")
    mem: dict[tuple[str, int], dict[str, float]] = {}
    points = (slope_tokens, 2 * slope_tokens, tokens_at)
    for variant in ("chunked", "naive"):
        for tokens in points:
            r = mem[variant, tokens] = child(["memory", variant, str(tokens), "none"])
            if r.get("oom"):
                print(f"{variant:<10}{tokens:>8}  out of memory (address space capped at "
                      f"{r['cap_mb']:.0f} MB, the memory free on this machine)")
            else:
                print(f"{variant:<10}{tokens:>8}{r['peak_mb']:>14.0f}{r['before_mb']:>12.0f}{r['seconds']:>10.2f}")
    for size in chunk_sweep:
        r = child(["memory", "chunked", str(tokens_at), str(size)])
        print(f"chunk {size:<4}{tokens_at:>8}{r['peak_mb']:>14.0f}{r['before_mb']:>12.0f}{r['seconds']:>10.2f}")
    peak = {}
    for variant in ("naive", "chunked"):
        lo, hi = mem[variant, points[0]], mem[variant, points[1]]
        slope = (hi["peak_mb"] - lo["peak_mb"]) / (points[1] - points[0])
        measured = mem[variant, tokens_at]
        estimate = hi["peak_mb"] + slope * (tokens_at - points[1])
        peak[variant] = estimate if measured.get("oom") else measured["peak_mb"]
        note = f"; T={tokens_at} estimated {estimate:.0f} MB (it ran out)" if measured.get("oom") else ""
        print(f"{variant}: {slope * 1024:.1f} MB per 1k tokens -> T=32768 estimate "
              f"{hi['peak_mb'] + slope * (32768 - points[1]):.0f} MB{note}")
    return peak


def throughput(repeats: int) -> dict[str, float]:
    """The throughput table; padding-free/padded tokens-per-second ratio for each split."""
    ls = lengths()
    print(f"\nthroughput: {SEQUENCES} sequences, prompt {PROMPT}, completion lengths (sorted): {ls}")
    print(f"  min {ls[0]}, median {ls[len(ls) // 2]}, mean {sum(ls) / len(ls):.0f}, max {ls[-1]}; "
          f"model {THROUGHPUT_MODEL}")
    print(f"{'micro-batches':<36}{'variant':<14}{'count':>6}{'real tokens':>13}{'computed':>10}"
          f"{'seconds':>9}{'CPU s':>8}{'tok/s':>8}")
    labels = {"rows": f"same rows: {ROWS} per micro-batch", "budget": f"same budget: {PROMPT + CAP} tokens"}
    ratios = {}
    for split, label in labels.items():
        tps: dict[str, float] = {}
        for _ in range(repeats):  # alternate, keep each variant's best: load from others drifts
            for variant in ("padded", "padding-free"):
                r = child(["throughput", variant, split])
                tps[variant] = max(tps.get(variant, 0.0), r["tokens"] / r["seconds"])
                print(f"{label:<36}{variant:<14}{r['micro_batches']:>6}{r['tokens']:>13}{r['computed']:>10}"
                      f"{r['seconds']:>9.2f}{r['cpu_seconds']:>8.2f}{r['tokens'] / r['seconds']:>8.0f}")
        ratios[split] = tps["padding-free"] / tps["padded"]
    return ratios


if __name__ == "__main__":
    main()

"""Benchmark metrics as pure functions: avg@k, unbiased pass@k, standard errors, IFEval's four.

1. avg@k: the mean over problems of the share of a problem's k samples judged correct (with
   k = 1 this is plain accuracy; QwQ, DeepSeek-R1 and Qwen3 report AIME as avg@k, "pass@1
   estimated from k samples").
2. pass@k: the unbiased estimator of Chen et al. 2021 (Codex, eq. 1) from n >= k samples with c
   correct, `1 - C(n-c, k) / C(n, k)`, computed as their numerically stable product
   `1 - prod_{i=n-c+1..n} (1 - k/i)`; binomials of n = 64 overflow nothing, but n = 1000 would.
3. Standard error: the sample standard deviation of the per-problem values over the number of
   problems (`std(ddof=1) / sqrt(N)`), i.e. the uncertainty from the finite problem set, as
   lm-evaluation-harness reports it; 0 with one problem.
4. IFEval: google-research instruction_following_eval's `print_report` numbers. Prompt level: a
   response counts when it follows every instruction of its prompt; instruction level: every
   instruction of every prompt counts once. Strict and loose are the same counts over the strict
   and the loose judgements. `ifeval_report` prints exactly what `print_report` prints.
"""
from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k samples drawn without replacement from n samples, c of
    them correct, is correct."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n, got n={n} c={c} k={k}")
    if n - c < k:
        return 1.0
    product = 1.0
    for i in range(n - c + 1, n + 1):
        product *= 1.0 - k / i
    return 1.0 - product


def mean_stderr(values: Sequence[float]) -> tuple[float, float]:
    """(mean, standard error of the mean); the error is 0 for fewer than two values."""
    if not values:
        raise ValueError("mean of no values")
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, 0.0
    variance = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(variance / n)


def default_ks(n: int) -> list[int]:
    """The k of pass@k reported for n samples: 1, 2, 4, ... up to n, and n itself."""
    ks = [1 << i for i in range(n.bit_length()) if 1 << i <= n]
    return ks if ks[-1] == n else ks + [n]


def sample_metrics(correct: Sequence[Sequence[bool]], ks: Sequence[int] | None = None,
                   ) -> dict[str, tuple[float, float]]:
    """`avg@n` and `pass@k` (each k <= n) as (value, standard error over problems).

    correct: per problem, one judgement per sample; every problem needs the same number n of
    judged samples (unjudged samples are dropped before, so a problem may have fewer: the
    estimator then uses its own n, and k is capped at the smallest n)."""
    if not correct or any(not c for c in correct):
        raise ValueError("every problem needs at least one judged sample")
    n_min = min(len(c) for c in correct)
    n_max = max(len(c) for c in correct)
    out = {f"avg@{n_max}": mean_stderr([sum(c) / len(c) for c in correct])}
    for k in ks if ks is not None else default_ks(n_min):
        if k <= n_min:
            out[f"pass@{k}"] = mean_stderr([pass_at_k(len(c), sum(c), k) for c in correct])
    return out


def ifeval_accuracies(instruction_ids: Sequence[Sequence[str]], strict: Sequence[Sequence[bool]],
                      loose: Sequence[Sequence[bool]]) -> dict[str, float]:
    """The four official accuracies (fractions) over responses, one entry per response."""
    out = {}
    for mode, followed in (("strict", strict), ("loose", loose)):
        if len(followed) != len(instruction_ids) or not followed:
            raise ValueError("one judgement list per response is needed")
        out[f"prompt_{mode}"] = sum(all(f) for f in followed) / len(followed)
        out[f"inst_{mode}"] = sum(sum(f) for f in followed) / sum(len(f) for f in followed)
    return out


def ifeval_report(instruction_ids: Sequence[Sequence[str]], followed: Sequence[Sequence[bool]]) -> str:
    """The text google-research's `evaluation_lib.print_report` prints for these judgements:
    both levels, then accuracy per instruction group and per instruction id."""
    prompt_correct = sum(all(f) for f in followed)
    inst_total = sum(len(ids) for ids in instruction_ids)
    inst_correct = sum(sum(f) for f in followed)
    groups: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    single: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for ids, flags in zip(instruction_ids, followed):
        for instruction_id, ok in zip(ids, flags):
            for table, key in ((groups, instruction_id.split(":")[0]), (single, instruction_id)):
                table[key][0] += bool(ok)
                table[key][1] += 1
    lines = [f"prompt-level: {prompt_correct / len(followed)}",
             f"instruction-level: {inst_correct / inst_total}", ""]
    lines += [f"{key} {groups[key][0] / groups[key][1]}" for key in sorted(groups)]
    lines.append("")
    lines += [f"{key} {single[key][0] / single[key][1]}" for key in sorted(single)]
    return "\n".join(lines)

"""Math verifier throughput: our batch verifier vs math-verify called sequentially, same run.

1. Builds a mixed, seeded set of realistic records (default 5,000): integer, fraction, radical,
   polynomial, set, interval, matrix and multiple-choice golds, bare or as MATH-style solutions;
   completions with a reasoning block, answers boxed or stated, right and wrong, in equivalent
   forms, hedged, unfinished, and a few pathological answers (exponent towers, deep nesting).
2. Baseline: for each record, in this process, `math_verify.parse` of the gold (in `$...$`
   unless it has a box) and of the text after `</think>`, then `math_verify.verify`, with
   math-verify's default (SIGALRM) timeouts.
3. Ours: `qwqrl.verifiers.math.verify_batch` (worker pool on every core, fast path in the
   parent), after the pool has started (its start-up is reported separately). The set is
   split into `--rounds` parts and the two verifiers alternate on them, so that other load on
   the machine weighs on both alike.
4. Repeats the comparison on records that all need sympy and are all different (default 600),
   where neither the fast path nor the reuse of repeated answers helps: the pool's own share.
5. Prints records/s for both, the ratio, the worst per-record latency (ours: the longest any
   record held a worker, bounded by the limit), and how often the two agree.

    .venv/bin/python benchmarks/math_verify_throughput.py [--records 5000] [--sympy-records 600] [--timeout-s 5]
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import random
import time

from qwqrl.verifiers.base import final_answer
from qwqrl.verifiers.math import pool, verify_batch

REASONING = ("Let me think about this step by step. First I rewrite the expression, then I "
             "simplify each term and check the edge cases carefully. ")

# (gold, equivalent spellings, wrong answers)
FORMS: list[tuple[str, list[str], list[str]]] = [
    ("\\frac{1}{2}", ["\\frac{1}{2}", "0.5", "\\dfrac{1}{2}", "1/2"], ["\\frac{1}{3}", "0.52"]),
    ("\\frac{3}{4}", ["0.75", "\\tfrac34"], ["\\frac{4}{3}"]),
    ("2\\sqrt{2}", ["\\sqrt{8}", "2\\sqrt{2}", "2 \\sqrt 2"], ["\\sqrt{2}", "4"]),
    ("x^2+2x+1", ["(x+1)^2", "1+2x+x^2"], ["x^2+1", "x^2+2x"]),
    ("\\{1,2,3\\}", ["\\{3,2,1\\}", "\\{1, 2, 3\\}"], ["\\{1,2\\}"]),
    ("(1, 2]", ["(1,2]"], ["[1,2]", "(1,2)"]),
    ("\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", ["\\begin{bmatrix}1&2\\\\3&4\\end{bmatrix}"],
     ["\\begin{pmatrix}1&2\\\\4&3\\end{pmatrix}"]),
    ("30^\\circ", ["30", "30^\\circ"], ["60^\\circ"]),
    ("5\\text{ cm}", ["5", "5 \\text{ cm}"], ["6 \\text{ cm}"]),
    ("\\pi", ["\\pi"], ["3.14", "2\\pi"]),
    ("-\\frac{7}{3}", ["-\\frac{7}{3}", "−\\frac{7}{3}"], ["\\frac{7}{3}"]),
    ("10^{3}", ["1000", "1{,}000", "10^3"], ["100"]),
]
PATHOLOGICAL = ["9^{9^{9^9}}", "(" * 2000 + "1" + ")" * 2000, "100000!"]


def make_records(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    records = []
    for i in range(n):
        reasoning = REASONING * rng.randint(2, 30)
        roll = rng.random()
        if roll < 0.5:  # integer answers (GSM8K, AIME): the most common case
            value = rng.randint(-50, 5000)
            gold = str(value)
            pred = str(value if rng.random() < 0.6 else value + rng.randint(1, 9))
            if rng.random() < 0.2:
                pred = f"{int(pred):,}"
        elif roll < 0.58:  # multiple choice
            gold = rng.choice("ABCD")
            pred = gold if rng.random() < 0.5 else rng.choice("ABCD")
            pred = rng.choice([f"\\boxed{{{pred}}}", f"The answer is ({pred}).",
                               f'{{"answer": "{pred}"}}'])
        else:
            gold, same, wrong = rng.choice(FORMS)
            pred = rng.choice(same) if rng.random() < 0.6 else rng.choice(wrong)
        if rng.random() < 0.2:  # MATH-style gold: a full solution
            gold = f"We find that the value is $\\boxed{{{gold}}}$. {REASONING}"
        style = rng.random()
        if pred.startswith(("\\boxed", "The answer is (", '{"answer"')):
            answer = pred
        elif style < 0.7:
            answer = f"Therefore the answer is $\\boxed{{{pred}}}$."
        elif style < 0.85:
            answer = f"The final answer is ${pred}$"
        elif style < 0.92:
            answer = f"So $\\boxed{{{pred}}}$ or possibly $\\boxed{{{pred}1}}$."  # hedged
        else:
            answer = f"It is $\\boxed{{{pred}}}$.\n\nFinal answer: $\\boxed{{{pred}}}$"
        completion = f"{reasoning}\n</think>\n\n{answer}"
        if rng.random() < 0.08:  # ran out of tokens inside the reasoning
            completion = reasoning + f" maybe \\boxed{{{pred}}}"
        records.append({"id": i, "answer": gold, "completion": completion})
    for k, bad in enumerate(PATHOLOGICAL):  # a handful, spread over the set
        records[(k + 1) * n // (len(PATHOLOGICAL) + 1)]["completion"] = (
            f"{REASONING}\n</think>\nThe answer is $\\boxed{{{bad}}}$.")
    return records


def make_sympy_records(n: int, seed: int = 1) -> list[dict]:
    """Records that all need sympy and are all different: no fast path, no repeats to reuse."""
    rng = random.Random(seed)
    records = []
    for i in range(n):
        a, b, wrong = rng.randint(2, 999), rng.randint(2, 999), rng.random() < 0.4
        c = a + 1 if wrong else a
        gold, pred = rng.choice([
            (f"{a}\\sqrt{{{b}}}", f"\\sqrt{{{c * c * b}}}"),
            (f"x^2+{a}x+{b}", f"{b}+{c}x+x^2"),
            (f"\\frac{{{a}\\pi}}{{{b}}}", f"\\frac{{{c}}}{{{b}}}\\pi"),
        ])
        records.append({"id": i, "answer": gold,
                        "completion": f"{REASONING}\n</think>\nSo $\\boxed{{{pred}}}$."})
    return records


def compare(records: list[dict], rounds: int, timeout_s: float) -> dict[str, float]:
    """Both verifiers on `records`, alternating over `rounds` parts so that other load on the
    machine weighs on both alike."""
    ours, base, ours_s, base_s, base_worst = [], [], 0.0, 0.0, 0.0
    step = -(-len(records) // rounds)
    for i in range(0, len(records), step):
        part = records[i:i + step]
        start = time.perf_counter()
        ours += verify_batch(part, timeout_s=timeout_s)
        ours_s += time.perf_counter() - start
        start = time.perf_counter()
        scores, worst = math_verify_sequential(part)
        base_s += time.perf_counter() - start
        base += scores
        base_worst = max(base_worst, worst)
    agree = sum(v.score == b for v, b in zip(ours, base)) / len(records)
    return {"n": len(records), "ours_s": ours_s, "base_s": base_s, "base_worst": base_worst,
            "agree": agree}


def math_verify_sequential(records: list[dict]) -> tuple[list[float], float]:
    from math_verify import parse, verify

    scores, worst = [], 0.0
    for r in records:
        start = time.perf_counter()
        text = final_answer(r["completion"])
        gold = r["answer"] if "\\boxed" in r["answer"] else f"${r['answer']}$"
        ok = text is not None and verify(parse(gold), parse(text))
        scores.append(float(ok))
        worst = max(worst, time.perf_counter() - start)
    return scores, worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=5000)
    parser.add_argument("--timeout-s", type=float, default=5.0)
    parser.add_argument("--sympy-records", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (5)")
    args = parser.parse_args()
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    records = make_records(args.records)

    start = time.perf_counter()  # start the pool: one record per worker that needs sympy
    verify_batch([{"answer": "\\frac{\\sqrt{2}}{2}", "completion": "</think>$\\boxed{2^{-1/2}}$"}]
                 * pool().processes)
    startup = time.perf_counter() - start
    warm_tasks = pool().stats.tasks
    mixed = compare(records, args.rounds, args.timeout_s)
    mixed_stats = dataclasses.replace(pool().stats)
    pool().stats.max_task_s = 0.0  # the worst record of the second set alone
    hard = compare(make_sympy_records(args.sympy_records), args.rounds, args.timeout_s)

    print(f"math verifier throughput: {pool().processes} worker processes, limit "
          f"{args.timeout_s:g}s per record (pool start-up {startup:.1f}s, not counted)")
    print(f"{'records':<30}{'verifier':<26}{'seconds':>9}{'records/s':>11}{'worst s':>9}")
    for label, r, worst in ((f"mixed, {mixed['n']}", mixed, mixed_stats.max_task_s),
                            (f"sympy-bound distinct, {hard['n']}", hard, pool().stats.max_task_s)):
        print(f"{label:<30}{'math-verify, sequential':<26}{r['base_s']:>9.1f}"
              f"{r['n'] / r['base_s']:>11.1f}{r['base_worst']:>9.2f}")
        print(f"{'':<30}{'qwqrl verify_batch':<26}{r['ours_s']:>9.1f}"
              f"{r['n'] / r['ours_s']:>11.1f}{worst:>9.2f}")
        print(f"{'':<30}ratio {r['base_s'] / r['ours_s']:.2f}x, same score "
              f"{r['agree']:.1%}")
    reached = mixed_stats.tasks + mixed_stats.timeouts - warm_tasks
    print(f"mixed set: {reached} records reached a worker (the rest took the fast path or "
          f"repeated an answer); timeouts {mixed_stats.timeouts}, worker restarts "
          f"{mixed_stats.restarts}")


if __name__ == "__main__":
    main()

"""Math sets: a problem and a final answer the math verifier compares against.

OpenR1-Math-220k (its `answer` column; `solution` is NuminaMath's worked solution, which often
has no `\\boxed{}` to extract), AIME 2024/2025 (HuggingFaceH4/aime_2024 and yentinglin/aime_2025
share one layout) and MATH-500 (HuggingFaceH4/MATH-500). The prompt is the problem alone: the
`\\boxed{}` instruction is added by `qwqrl.data.prompts` when the prompt is rendered.
"""
from __future__ import annotations

from qwqrl.data.converters import Row, SkipRow, register

# NuminaMath-1.5, where OpenR1-Math's problems come from, writes these where a problem has no
# single final answer (proofs) or none was found.
NO_ANSWER = {"", "proof", "notfound"}


def _problem_answer(row: Row, id_key: str) -> Row:
    answer = row["answer"]
    if isinstance(answer, str):
        answer = answer.strip()
        if answer.lower() in NO_ANSWER:
            raise SkipRow("no final answer to check (proof or not found)")
    elif answer is None:
        raise SkipRow("no final answer to check (proof or not found)")
    record = {"task": "math", "prompt": row["problem"], "answer": answer}
    if row.get(id_key) is not None:
        record["id"] = row[id_key]
    return record


@register("openr1_math", fixture="openr1_math.jsonl")
def openr1_math(row: Row) -> Row:
    """open-r1/OpenR1-Math-220k: `problem` -> prompt, `answer` -> answer, `uuid` -> id; rows
    without a checkable answer (proofs) are skipped. The R1 `generations` are not used."""
    return _problem_answer(row, "uuid")


@register("aime", fixture="aime.jsonl")
def aime(row: Row) -> Row:
    """HuggingFaceH4/aime_2024, yentinglin/aime_2025: `problem`, `answer` (an integer 0-999
    as a string); id `aime<year>-<id>` so the two years never collide."""
    record = _problem_answer(row, "id")
    if row.get("year") is not None and row.get("id") is not None:
        record["id"] = f"aime{row['year']}-{row['id']}"
    return record


@register("math500", fixture="math500.jsonl")
def math500(row: Row) -> Row:
    """HuggingFaceH4/MATH-500: `problem`, `answer`; `unique_id` (e.g. test/algebra/1.json)
    -> id, `subject` and `level` kept for per-subject reports."""
    record = _problem_answer(row, "unique_id")
    record.update({k: row[k] for k in ("subject", "level") if row.get(k) is not None})
    return record

"""Built-in data generators for the tiny CPU demo and the tests: nothing is downloaded.

Each generator is `fn(n, seed, **options) -> list[record]`, deterministic in its arguments, and
every record carries a reference `completion` written as the model should produce it after the
template's `<think>\\n`: a short reasoning, `</think>`, a blank line, then the answer. The demo
model is ~1M parameters with a byte-level tokenizer and ~96 new tokens, so prompts stay under
~45 characters and completions under ~85 bytes, and the reasoning is a mechanical trace a small
model can learn (the calibration note: a digit-by-digit addition trace is learnable on 2 cores).

Held-out sets: `split="test"` keeps only problems whose operands hash into a fixed tenth of the
space and `split="train"` only the rest, so train and test never share a problem whatever the
seeds; `a+b` and `b+a` hash alike.
"""
from __future__ import annotations

import functools
import json
import operator
import random
import string
import zlib
from dataclasses import dataclass
from typing import Any, Callable, Literal

from qwqrl.errors import UserError
from qwqrl.verifiers.base import THINK_CLOSE

Split = Literal["train", "test"]
TEST_BUCKETS = 10  # one bucket in ten is held out
MAX_TRIES_PER_RECORD = 1000  # drawing distinct problems in a split gives up after this


def reference(reasoning: str, answer: str) -> str:
    """A completion in the QwQ shape, continuing after the template's `<think>\\n`."""
    return f"{reasoning}\n{THINK_CLOSE}\n\n{answer}"


# ------------------------------------------------------------------------------------------ math


def addition_trace(a: int, b: int) -> str:
    """Column by column from the units: `8+6=14`, then `7+5+1=13` with the carry, ..."""
    lines, carry = [], 0
    for x, y in _columns(a, b):
        total = x + y + carry
        lines.append(f"{x}+{y}{'+1' if carry else ''}={total}")
        carry = total // 10
    return "\n".join(lines)


def subtraction_trace(a: int, b: int) -> str:
    """For a >= b, column by column: `12-7=5` borrows (the leading 1), `5-2-1=2` repays it."""
    lines, borrow = [], 0
    for x, y in _columns(a, b):
        diff = x - y - borrow
        lines.append(f"{'1' if diff < 0 else ''}{x}-{y}{'-1' if borrow else ''}={diff % 10}")
        borrow = int(diff < 0)
    return "\n".join(lines)


def arithmetic(n: int, seed: int, min_digits: int = 1, max_digits: int = 3,
               split: Split = "train") -> list[dict]:
    """"What is a+b?" with operands of `min_digits`..`max_digits` digits; gold: the sum."""
    records = []
    for a, _, b in _problems(random.Random(seed), n, min_digits, max_digits, split, "+"):
        records.append({
            "task": "math", "prompt": f"What is {a}+{b}?", "answer": str(a + b),
            "completion": reference(addition_trace(a, b), f"\\boxed{{{a + b}}}"),
        })
    return records


NAMES = ("Tom", "Ann", "Sam", "Mia", "Ben", "Zoe", "Max", "Eva")
ITEMS = ("apples", "pens", "cards", "coins", "books", "eggs", "shells", "stamps")
STORIES = {"+": "{name} has {a} {item} and gets {b} more. How many?",
           "-": "{name} has {a} {item} and loses {b}. How many?"}


def word_problems(n: int, seed: int, min_digits: int = 1, max_digits: int = 2,
                  split: Split = "train") -> list[dict]:
    """Templated gain/loss stories; the reasoning first writes the equation, then traces it."""
    rng = random.Random(seed)
    records = []
    for a, op, b in _problems(rng, n, min_digits, max_digits, split, "+-"):
        if op == "+":
            result, trace = a + b, addition_trace(a, b)
        else:
            result, trace = a - b, subtraction_trace(a, b)
        prompt = STORIES[op].format(name=rng.choice(NAMES), item=rng.choice(ITEMS), a=a, b=b)
        records.append({
            "task": "math", "prompt": prompt, "answer": str(result),
            "completion": reference(f"{a}{op}{b}\n{trace}", f"\\boxed{{{result}}}"),
        })
    return records


def _columns(a: int, b: int) -> list[tuple[int, int]]:
    """Digit pairs from the units up, the shorter number padded with zeros."""
    width = max(len(str(a)), len(str(b)))
    return [(int(x), int(y))
            for x, y in zip(str(a).zfill(width)[::-1], str(b).zfill(width)[::-1], strict=True)]


def _problems(rng: random.Random, n: int, min_digits: int, max_digits: int, split: Split,
              ops: str) -> list[tuple[int, str, int]]:
    """`n` distinct problems (a, op, b) in `split`, op drawn from `ops`; for `-`, a >= b (no
    negative answers). Distinct, so a held-out set of n prompts measures n problems."""
    if not 1 <= min_digits <= max_digits:
        raise UserError(f"need 1 <= min_digits <= max_digits, got {min_digits}, {max_digits}")
    if split not in ("train", "test"):
        raise UserError(f"split must be 'train' or 'test', got {split!r}")
    problems: dict[str, tuple[int, str, int]] = {}
    for _ in range(MAX_TRIES_PER_RECORD * n):
        if len(problems) == n:
            return list(problems.values())
        op = rng.choice(ops)
        a, b = (_operand(rng, min_digits, max_digits) for _ in range(2))
        if op == "-":
            a, b = max(a, b), min(a, b)
        key = f"{a}{op}{b}" if op == "-" else f"{min(a, b)}{op}{max(a, b)}"
        if (zlib.crc32(key.encode()) % TEST_BUCKETS == 0) == (split == "test"):
            problems.setdefault(key, (a, op, b))
    raise UserError(f"could not draw {n} distinct {split} problems with {min_digits}-{max_digits} "
                    f"digit operands: too few exist; widen the digit range")


def _operand(rng: random.Random, min_digits: int, max_digits: int) -> int:
    digits = rng.randint(min_digits, max_digits)
    return rng.randint(0 if digits == 1 else 10 ** (digits - 1), 10**digits - 1)


# ------------------------------------------------------------------------------------------ code


@dataclass(frozen=True)
class CodeTask:
    """One stdio task: the prompt, the reasoning, the reference program, how to make an input,
    and the expected output computed here in Python, independently of the program text."""

    prompt: str
    reasoning: str
    program: str
    make_input: Callable[[random.Random], str]
    solve: Callable[[str], str]


READ_TWO = "a,b=map(int,input().split())\n"
PAIR_OPS = {"sum": ("sum", "a+b", operator.add), "difference": ("diff", "a-b", operator.sub),
            "product": ("product", "a*b", operator.mul), "maximum": ("max", "max(a,b)", max),
            "minimum": ("min", "min(a,b)", min)}
CONSTANT_OPS = {"plus": ("+", operator.add), "minus": ("-", operator.sub),
                "times": ("*", operator.mul)}
LINE_OPS = {"print it reversed": ("input()[::-1]", lambda s: s[::-1], "reverse the line"),
            "print it uppercased": ("input().upper()", str.upper, "uppercase the line"),
            "print its length": ("len(input())", len, "length of the line")}


def code_tasks(split: Split | None = None) -> dict[str, list[CodeTask]]:
    """The code generator's tasks by family (constants 2..99 for the one-integer tasks); a
    record picks a family uniformly, then a task in it, so no family dominates.

    `split`: "test" keeps only one-integer tasks whose constant is held out (a multiple of 7),
    so a held-out pass rate measures writing a program for an unseen request, not recalling
    one; "train" leaves those constants out; None keeps every task.
    """
    two_ints = [CodeTask(f"Read two integers and print their {name}.", f"{short} of two ints",
                         f"{READ_TWO}print({expr})", _two_ints,
                         lambda s, fn=fn: str(fn(*map(int, s.split()))))
                for name, (short, expr, fn) in PAIR_OPS.items()]
    one_int = [CodeTask(f"Read an integer and print it {word} {k}.", f"n {word} {k}",
                        f"print(int(input()){sym}{k})", _one_int,
                        lambda s, fn=fn, k=k: str(fn(int(s), k)))
               for word, (sym, fn) in CONSTANT_OPS.items() for k in range(2, 100)
               if split is None or (k % 7 == 0) == (split == "test")]
    line = [CodeTask(f"Read a line and {what}.", reasoning, f"print({expr})", _word,
                     lambda s, fn=fn: str(fn(s.rstrip("\n"))))
            for what, (expr, fn, reasoning) in LINE_OPS.items()]
    if split == "test":
        return {"one integer": one_int}
    return {"two integers": two_ints, "one integer": one_int, "one line": line}


def code(n: int, seed: int, cases: int = 4, split: Split | None = None) -> list[dict]:
    """Tiny stdio programs; `tests` holds `cases` input/output pairs (outputs end in a newline,
    as `print` writes them). `split` as in `code_tasks`."""
    if not 1 <= cases <= 10:
        raise UserError(f"cases must be between 1 and 10, got {cases}")
    rng = random.Random(seed)
    families = list(code_tasks(split).values())
    records = []
    for _ in range(n):
        task = rng.choice(rng.choice(families))
        inputs = [task.make_input(rng) for _ in range(cases)]
        records.append({
            "task": "code", "prompt": task.prompt,
            "tests": {"type": "stdio",
                      "cases": [{"input": x, "output": task.solve(x) + "\n"} for x in inputs]},
            "completion": reference(task.reasoning, f"```python\n{task.program}\n```"),
        })
    return records


def _two_ints(rng: random.Random) -> str:
    return f"{rng.randint(-50, 99)} {rng.randint(-50, 99)}\n"


def _one_int(rng: random.Random) -> str:
    return f"{rng.randint(-50, 99)}\n"


def _word(rng: random.Random) -> str:
    return "".join(rng.choices(string.ascii_lowercase, k=rng.randint(3, 8))) + "\n"


# -------------------------------------------------------------------------------------- ifeval

# Long enough for language detection to call it English in any case (the change_case checks).
IFEVAL_BASE_ANSWER = "This is my short answer to your question about the topic."
FILLER_WORDS = ("and", "here", "is", "more", "text", "for", "you")


def _pad_words(text: str, kw: dict[str, Any]) -> str:
    missing = kw["num_words"] - len(text.split()) if kw.get("relation") == "at least" else 0
    return " ".join([text, *(FILLER_WORDS[i % len(FILLER_WORDS)] for i in range(missing))])


# How to satisfy each IFEval instruction we can cheaply, applied in this order (content first,
# then what must be at the end, then case, then the enclosing quotes). Records with any other
# instruction get no reference completion: RL needs none, only SFT does.
IFEVAL_WRITERS: dict[str, Callable[[str, dict[str, Any]], str]] = {
    "detectable_format:title": lambda t, kw: f"<<answer>>\n{t}",
    "combination:repeat_prompt": lambda t, kw: f"{kw['prompt_to_repeat']}\n{t}",
    "keywords:existence": lambda t, kw: " ".join([t, *kw["keywords"]]),
    "keywords:frequency": lambda t, kw: " ".join(
        [t] + [kw["keyword"]] * (kw["frequency"] if kw.get("relation") == "at least" else 0)),
    "punctuation:no_comma": lambda t, kw: t,
    "length_constraints:number_words": _pad_words,
    "detectable_content:postscript": lambda t, kw: f"{t}\n{kw['postscript_marker']} Thanks.",
    "startend:end_checker": lambda t, kw: f"{t} {kw['end_phrase']}",
    "change_case:english_lowercase": lambda t, kw: t.lower(),
    "change_case:english_capital": lambda t, kw: t.upper(),
    "startend:quotation": lambda t, kw: f'"{t}"',
}


def ifeval_reference(record: dict[str, Any]) -> str | None:
    """A response meant to follow every instruction of `record`; None if one is not in
    IFEVAL_WRITERS. Contradictory sets (quotes around a repeated prompt) still get one, so
    callers keep only references the ifeval verifier accepts."""
    given = dict(zip(record["instruction_id_list"], record["kwargs"], strict=True))
    if not given.keys() <= IFEVAL_WRITERS.keys():
        return None
    text = IFEVAL_BASE_ANSWER
    for instruction, write in IFEVAL_WRITERS.items():
        if instruction in given:
            text = write(text, given[instruction] or {})
    return reference("follow the rules", text)


def ifeval(n: int, seed: int, references_only: bool = False,
           instructions: list[str] | None = None, max_instructions: int = 3) -> list[dict]:
    """Instruction-following prompts from the ifeval verifier's own generator, with a reference
    completion where `ifeval_reference` writes one that the ifeval verifier scores 1.
    `references_only` keeps just the records that have one (for SFT); `instructions` and
    `max_instructions` narrow what is asked (see `make_records`)."""
    from qwqrl.verifiers.ifeval.synthetic import make_records
    from qwqrl.verifiers.registry import verify_batch

    records = [{**record, "task": "ifeval"}
               for record in make_records(n, seed, instructions, max_instructions)]
    drafts = {i: ifeval_reference(record) for i, record in enumerate(records)}
    drafts = {i: draft for i, draft in drafts.items() if draft is not None}
    verdicts = verify_batch("ifeval", [{**records[i], "completion": d} for i, d in drafts.items()])
    for (i, draft), verdict in zip(drafts.items(), verdicts, strict=True):
        if verdict.score == 1.0:
            records[i]["completion"] = draft
    return [r for r in records if "completion" in r] if references_only else records


# ------------------------------------------------------------------------------------- general


def general(n: int, seed: int) -> list[dict]:
    """Open prompts scored by the reward model; the reference is the preferred response of the
    reward model's own synthetic preference pairs."""
    from qwqrl.rm.synthetic import make_preference_pairs

    return [{"task": "general", "prompt": row["prompt"],
             "completion": row["chosen"] if THINK_CLOSE in row["chosen"]
             else reference("reply briefly", row["chosen"])}
            for row in make_preference_pairs(n, seed)]


# ------------------------------------------------------------------------------- tool use


def products(n: int, seed: int, min_digits: int = 3, max_digits: int = 4, split: Split = "train",
             tool_share: float = 1.0) -> list[dict]:
    """"What is a*b?": a product the tiny model cannot work out in its head but can with the
    `python` tool. A `tool_share` of the references call the tool and copy what it prints:

        Use python.</think>  <tool_call>{"name": "python", "arguments": {"code": "print(a*b)"}}
        </tool_call>  [the tool turn]  It printed the answer.</think>  \\boxed{p}

    (the tool turn as the tiny tokenizer's QwQ template writes it, `tool_response_text`, exactly
    what the rollout loop appends, and context only: the cold start does not train on it,
    `sft.SFTRow.loss_mask`; the product is copied once, into the box: every digit a
    ~1M-parameter model copies is a chance to get it wrong); the others write the product straight away ("In my head,
    a*b=p."), which a model that cannot multiply only imitates. Both start with a fixed phrase,
    so the choice to call the tool is one early token. A cold start on both leaves RL a choice
    to reward."""
    if not 0.0 <= tool_share <= 1.0:
        raise UserError(f"tool_share must be in [0, 1], got {tool_share}")
    picks = random.Random(seed + 1)  # the problems do not depend on tool_share
    records = []
    for a, _, b in _problems(random.Random(seed), n, min_digits, max_digits, split, "*"):
        product = a * b
        if picks.random() < tool_share:
            completion = _tool_trace(a, b, product)
        else:
            completion = reference(f"In my head, {a}*{b}={product}.", f"\\boxed{{{product}}}")
        records.append({"task": "math", "prompt": f"What is {a}*{b}?", "answer": str(product),
                        "completion": completion})
    return records


def _tool_trace(a: int, b: int, product: int) -> str:
    from qwqrl.chat_template import tool_response_text
    from qwqrl.tools.python_tool import NAME

    call = json.dumps({"name": NAME, "arguments": {"code": f"print({a}*{b})"}})
    ask = reference("Use python.", f"<tool_call>\n{call}\n</tool_call>")
    return (ask + tool_response_text(_tiny_tokenizer(), [str(product)])
            + reference("It printed the answer.", f"\\boxed{{{product}}}"))


@functools.lru_cache(maxsize=1)
def _tiny_tokenizer() -> Any:
    from qwqrl.tiny import build_tokenizer

    return build_tokenizer()


GENERATORS: dict[str, Callable[..., list[dict]]] = {
    "arithmetic": arithmetic, "word_problems": word_problems, "code": code,
    "ifeval": ifeval, "general": general, "products": products,
}

"""The reward policy of the math verifier that needs no sympy: which answer is judged, and when.

math-verify decides whether two answers are equal. What an RL reward also needs is a policy on
*which* text is the answer, and these rules live here, in plain string code that cannot hang
(every scan is linear) so the parent process can apply them before a worker ever sees the record:

- gold: a bare answer, or a full MATH-style solution whose last `\\boxed{}` is the answer;
- the answer is the text after the last `</think>`; the `\\boxed{}` contents there are the
  candidates, or, without any, the sentence that states the answer;
- hedging earns nothing: "4 or 5", `\\pm` (unless the gold has it), several different boxed
  values, several multiple-choice letters;
- a fast path settles the common cases without sympy: equal normalized strings, numbers written
  as literals (integers, decimals, simple fractions) compared exactly, multiple-choice letters.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

_BOX_OPEN = re.compile(r"\\(?:boxed|fbox)\s*\{")
_TEXT_WRAPPERS = re.compile(r"\\(?:text|textbf|mathrm|mathbf|textit|mbox)\s*\{([^{}]*)\}")
_SPACING = re.compile(r"\\[,;:! ]|\\q?quad|~")
_DECIMAL = re.compile(r"-?\d+(?:\.\d+)?")
_FRACTION = re.compile(r"(-?)(?:\\frac\{(\d+)\}\{(\d+)\}|(\d+)/(\d+))")
_THOUSANDS = re.compile(r"-?\d{1,3}(?:,\d{3})+")
# Words and operators that offer more than one answer. `or` must stand alone as a word.
_HEDGES = {"or": re.compile(r"(?<![A-Za-z])or(?![A-Za-z])", re.IGNORECASE),
           "pm": re.compile(r"\\pm|\\mp|±|∓")}
# The sentence that states an answer: from the last "answer is"/"answer:" to the end of its line.
_ANSWER_ANCHOR = re.compile(r"answer\s*(?:is\b|:|=)", re.IGNORECASE)
_STATED_NUMBER = re.compile(r"\s*\**\s*\$?\s*(-?\d[\d,]*(?:\.\d+)?)\s*\$?\s*\**\s*\.?\s*")

_MC_GOLD = re.compile(r"\(?([A-J])\)?")
_MC_BOXED = re.compile(r"\(?([A-J])\)?(?:[\s.:)]|$)")
_MC_TIERS = (  # strongest evidence first; the first tier that finds letters decides
    re.compile(r"\"answer\"\s*:\s*\"\s*\(?([A-J])\)?"),
    re.compile(r"answer\s*(?:is\s*:?|:)\s*(?:option\s*|choice\s*)?\**\s*\(?([A-J])\)?(?![A-Za-z])",
               re.IGNORECASE),
    re.compile(r"\(([A-J])\)"),
)

# Candidates beyond these sizes are pathological (towers, thousands of nested brackets): they
# score 0 here instead of occupying a worker until its deadline.
MAX_CANDIDATE_CHARS = 1000
MAX_NESTING = 60
# More distinct boxed answers than this is a shotgun, whatever they contain.
MAX_CANDIDATES = 8


def boxed_contents(text: str) -> list[str]:
    """The contents of every `\\boxed{...}` / `\\fbox{...}` in `text`, in order, braces matched."""
    found = []
    pos = 0
    while (m := _BOX_OPEN.search(text, pos)) is not None:
        depth, i = 1, m.end()
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        if depth:  # unclosed box: nothing more to find
            break
        found.append(text[m.end():i - 1].strip())
        pos = i
    return found


def gold_answer(gold: str) -> str:
    """The gold's answer: the last boxed value of a full solution, else the bare answer."""
    boxed = boxed_contents(gold)
    answer = boxed[-1] if boxed else gold.strip()
    return answer.strip("$ ").strip()


def normalize(answer: str) -> str:
    """A canonical spelling for string comparison (not for judging equivalence)."""
    s = answer.replace("−", "-").replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    s = s.replace("\\left", "").replace("\\right", "").replace("{,}", ",")
    s = _TEXT_WRAPPERS.sub(r"\1", s)
    s = _SPACING.sub("", s)
    s = "".join(s.split()).strip("$").rstrip(".")
    if _THOUSANDS.fullmatch(s):
        s = s.replace(",", "")
    return s


def as_number(answer: str) -> Fraction | None:
    """The exact number an answer spells literally ("17", "1,000", "-0.25", "\\frac{3}{4}",
    "3/4"), else None. Anything else (radicals, powers, percents) is left to sympy."""
    s = normalize(answer)
    if len(s) > 100:  # beyond any realistic literal; also keeps int() under its digit limit
        return None
    if _DECIMAL.fullmatch(s):
        return Fraction(s)
    m = _FRACTION.fullmatch(s)
    if m is None:
        return None
    sign, num, den = m.group(1), int(m.group(2) or m.group(4)), int(m.group(3) or m.group(5))
    if den == 0:
        return None
    return Fraction(-num if sign else num, den)


def hedges(answer: str, gold: str) -> list[str]:
    """Hedging markers in `answer` that the gold itself does not contain. A gold that lists
    values ("-2, 2") may be answered "\\pm 2" or "2 or -2": nothing is a hedge then."""
    if several_values(gold):
        return []
    return [name for name, rx in _HEDGES.items() if rx.search(answer) and not rx.search(gold)]


def too_complex(answer: str) -> bool:
    """True for answers no sympy call should see: very long, or brackets nested very deep."""
    if len(answer) > MAX_CANDIDATE_CHARS:
        return True
    depth = peak = 0
    for ch in answer:
        if ch in "({[":
            depth += 1
            peak = max(peak, depth)
        elif ch in ")}]":
            depth -= 1
    return peak > MAX_NESTING


def stated_answer(region: str) -> str:
    """Without a box: the text after the last "answer is"/"answer:", to the end of that line;
    failing that, the last non-empty line."""
    anchors = list(_ANSWER_ANCHOR.finditer(region))
    if anchors:
        return region[anchors[-1].end():].split("\n", 1)[0].strip()
    lines = [ln.strip() for ln in region.splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def stated_number(statement: str) -> Fraction | None:
    """The number a statement such as "17." or "$1,000$" consists of, else None."""
    m = _STATED_NUMBER.fullmatch(statement.replace("−", "-"))
    return as_number(m.group(1)) if m else None


def several_values(gold: str) -> bool:
    """True for a gold that lists values (a set, a tuple, "1, 2"): several boxes may state it."""
    return "," in normalize(gold)


def mc_gold_letter(gold: str) -> str | None:
    """The letter of a multiple-choice gold ("C", "(C)"), else None."""
    m = _MC_GOLD.fullmatch(normalize(gold))
    return m.group(1) if m else None


def mc_letters(region: str) -> list[str]:
    """The option letters the answer region offers, from its strongest kind of evidence."""
    boxed = [m.group(1) for b in boxed_contents(region)
             if (m := _MC_BOXED.match(normalize(b))) is not None]
    if boxed:
        return boxed
    for tier in _MC_TIERS:
        letters = tier.findall(region)
        if letters:
            return letters
    return []


@dataclass(frozen=True)
class MathJob:
    """What a worker must judge with sympy: the gold, and either boxed candidates or a region."""
    gold: str
    candidates: tuple[str, ...]
    region: str | None = None

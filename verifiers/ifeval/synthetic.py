"""IFEval-style records for demos and smoke runs: a writing task and one to three instructions.

Each instruction comes with its phrasing and the official id and kwargs, so the records feed
`verify` and `ifeval_reward` exactly as IFEval's own input data does. The instructions are
chosen never to contradict each other.
"""
from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

_TASKS = (
    "Write a short note to a neighbour about a lost cat.",
    "Describe your ideal weekend.",
    "Explain how a bicycle gear works.",
    "Give advice to someone starting to learn the piano.",
    "Write a product description for a reusable water bottle.",
    "Summarize why sleep matters for students.",
    "Write a short story about a lighthouse keeper.",
    "Explain what a budget is to a teenager.",
)
_KEYWORDS = ("river", "lantern", "honest", "garden", "signal", "window", "morning", "balance")
_ENDINGS = ("Is there anything else I can help with?", "That is all.", "Thanks for reading.")

Make = Callable[[random.Random], tuple[str, dict[str, Any]]]


def _lowercase(rng: random.Random) -> tuple[str, dict[str, Any]]:
    return "Your entire response should be in English, and in all lowercase letters.", {}


def _no_comma(rng: random.Random) -> tuple[str, dict[str, Any]]:
    return "Do not use any commas in your response.", {}


def _word_count(rng: random.Random) -> tuple[str, dict[str, Any]]:
    relation, words = rng.choice(("less than", "at least")), rng.choice((40, 60, 80, 120))
    return f"Answer with {relation} {words} words.", {"relation": relation, "num_words": words}


def _title(rng: random.Random) -> tuple[str, dict[str, Any]]:
    return "Include a title wrapped in double angular brackets, such as <<my title>>.", {}


def _end_phrase(rng: random.Random) -> tuple[str, dict[str, Any]]:
    phrase = rng.choice(_ENDINGS)
    return (f'Finish your response with the exact phrase "{phrase}". No other words should '
            "follow it.", {"end_phrase": phrase})


def _keywords(rng: random.Random) -> tuple[str, dict[str, Any]]:
    words = rng.sample(_KEYWORDS, 2)
    return f"Include the keywords {words[0]} and {words[1]}.", {"keywords": words}


def _bullets(rng: random.Random) -> tuple[str, dict[str, Any]]:
    count = rng.randint(2, 5)
    return (f"Your answer must contain exactly {count} markdown bullet points, such as:\n"
            "* This is a point.", {"num_bullets": count})


def _sentences(rng: random.Random) -> tuple[str, dict[str, Any]]:
    relation, count = rng.choice(("less than", "at least")), rng.randint(3, 8)
    return (f"Your response should contain {relation} {count} sentences.",
            {"relation": relation, "num_sentences": count})


# id -> phrasing; ids in one record are drawn without replacement, and none of these conflict.
_INSTRUCTIONS: dict[str, Make] = {
    "change_case:english_lowercase": _lowercase,
    "punctuation:no_comma": _no_comma,
    "length_constraints:number_words": _word_count,
    "detectable_format:title": _title,
    "startend:end_checker": _end_phrase,
    "keywords:existence": _keywords,
    "detectable_format:number_bullet_lists": _bullets,
    "length_constraints:number_sentences": _sentences,
}
# The lowercase instruction rules out capitalised end phrases.
_EXCLUSIVE = {frozenset({"change_case:english_lowercase", "startend:end_checker"})}


def make_records(n: int, seed: int = 0, instructions: list[str] | None = None,
                 max_instructions: int = 3) -> list[dict[str, Any]]:
    """`n` records with `prompt`, `instruction_id_list` and `kwargs` in the official format.

    `instructions` restricts the ids drawn from (e.g. the ones a tiny demo model can learn);
    each record has 1 to `max_instructions` of them.
    """
    pool = sorted(instructions or _INSTRUCTIONS)
    unknown = sorted(set(pool) - set(_INSTRUCTIONS))
    if unknown:
        raise ValueError(f"no generator for instruction ids {unknown}; known: {sorted(_INSTRUCTIONS)}")
    rng = random.Random(seed)
    records = []
    while len(records) < n:
        ids = rng.sample(pool, rng.randint(1, min(max_instructions, len(pool))))
        if any(pair <= set(ids) for pair in _EXCLUSIVE):
            continue
        phrases, kwargs = zip(*(_INSTRUCTIONS[i](rng) for i in ids))
        records.append({
            "prompt": " ".join((rng.choice(_TASKS), *phrases)),
            "instruction_id_list": ids,
            "kwargs": list(kwargs),
        })
    return records

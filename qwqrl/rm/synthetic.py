"""Synthetic preference data for the CPU demo's reward model.

The demo's stage two needs a reward model that a ~1M-parameter Qwen2 learns on CPU in a minute,
and that rewards something a tiny policy can get better at. Here "better" is general answer
quality in miniature: a chosen answer is one polite, complete sentence that ends with a period
and names the prompt's topic; a rejected answer is empty, repetitive, truncated mid-sentence,
curt, or about another topic (the one kind a tiny RM learns only partly: it must match words
across the prompt and the answer). Completions follow the QwQ format,
`<reasoning>\\n</think>\\n\\n<answer>` (the chat template already opened `<think>`); the
reasoning is drawn the same way for both sides, so only the answer separates them, as the reward
model only ever sees the answer.

Measured with `qwqrl.tiny.build_reward_model` trained by `qwqrl.rm.train.train_reward_model` on
1600 pairs (one epoch, lr 1e-3, 16 pairs a step: 100 steps, about 30 s on 2 idle cores): it
ranks about 89% of held-out pairs right, every kind but off-topic almost always.
"""
from __future__ import annotations

import random
from collections.abc import Callable

from qwqrl.verifiers.base import THINK_CLOSE

TOPICS = ["cat", "dog", "rain", "sun", "tree", "river", "book", "bread", "music", "moon",
          "snow", "garden", "friend", "ocean", "bird", "tea", "city", "flower", "apple", "train"]
ADJECTIVES = ["calm", "bright", "gentle", "lovely", "warm", "quiet", "beautiful", "kind", "soft",
              "cheerful"]
PROMPTS = ["Describe the {t}.", "Say something kind about the {t}.", "Tell me about the {t}.",
           "Write a sentence about the {t}.", "What is nice about the {t}?"]
GOOD_ANSWERS = ["The {t} is {a} and {b}.", "I think the {t} is {a}, and it makes people happy.",
                "Thank you for asking: the {t} is {a}.", "A {t} can be {a} and {b}.",
                "Many people love the {t} because it is {a}."]
CURT = ["No.", "Whatever.", "I do not care.", "Ask someone else.", "That is a silly question."]
REASONING = ["The user asks about the {t}.", "Let me think about the {t}.",
             "I should answer in one sentence.", "A short, kind answer is best."]


def make_preference_pairs(n: int, seed: int = 0) -> list[dict[str, str]]:
    """`n` rows `{"prompt", "chosen", "rejected"}`; the rejected kinds come in equal shares."""
    rng = random.Random(seed)
    rows = []
    for k in range(n):
        topic = rng.choice(TOPICS)
        good = _good_answer(rng, topic)
        bad = _REJECTED[k % len(_REJECTED)](rng, topic, good)
        rows.append({
            "prompt": rng.choice(PROMPTS).format(t=topic),
            "chosen": _completion(rng, topic, good),
            "rejected": _completion(rng, topic, bad),
        })
    return rows


def _good_answer(rng: random.Random, topic: str) -> str:
    a, b = rng.sample(ADJECTIVES, 2)
    return rng.choice(GOOD_ANSWERS).format(t=topic, a=a, b=b)


def _completion(rng: random.Random, topic: str, answer: str) -> str:
    return f"{rng.choice(REASONING).format(t=topic)}\n{THINK_CLOSE}\n\n{answer}"


def _empty(rng: random.Random, topic: str, good: str) -> str:
    return rng.choice(["", " ", "..."])


def _repetitive(rng: random.Random, topic: str, good: str) -> str:
    word = rng.choice([topic, rng.choice(ADJECTIVES), "the"])
    return " ".join([word] * rng.randint(3, 12))


def _truncated(rng: random.Random, topic: str, good: str) -> str:
    return good[:rng.randint(len(good) // 3, len(good) - 2)].rstrip(" .,:")


def _curt(rng: random.Random, topic: str, good: str) -> str:
    return rng.choice(CURT)


def _off_topic(rng: random.Random, topic: str, good: str) -> str:
    return _good_answer(rng, rng.choice([t for t in TOPICS if t != topic]))


_REJECTED: list[Callable[[random.Random, str, str], str]] = [_empty, _repetitive, _truncated,
                                                             _curt, _off_topic]

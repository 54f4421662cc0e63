"""The demo's synthetic preference pairs: reproducible, in the QwQ completion format, learnable."""
from __future__ import annotations

from qwqrl.rm.synthetic import TOPICS, make_preference_pairs
from qwqrl.verifiers.base import final_answer


def test_pairs_are_reproducible_per_seed():
    assert make_preference_pairs(20, seed=3) == make_preference_pairs(20, seed=3)
    assert make_preference_pairs(20, seed=3) != make_preference_pairs(20, seed=4)


def test_chosen_is_a_finished_on_topic_sentence_and_rejected_differs():
    for pair in make_preference_pairs(200, seed=0):
        topic = next(t for t in TOPICS if f"the {t}" in pair["prompt"])
        chosen = final_answer(pair["chosen"]).strip()
        rejected = final_answer(pair["rejected"])
        assert rejected is not None  # every rejected answer is finished: only quality differs
        assert chosen.endswith(".") and topic in chosen.replace(",", " ").rstrip(".").split()
        assert rejected.strip() != chosen

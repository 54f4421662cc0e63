"""The RewardRouter: built-in and custom rewards through one path, weighted, masked when a term
cannot judge, and recipe errors for custom functions that cannot be called."""
from __future__ import annotations

import pytest

from qwqrl.config import RewardsConfig
from qwqrl.errors import UserError
from qwqrl.recipe import validate
from qwqrl.rewards import RewardRouter, record_tasks

DONE = "reasoning\n</think>\n"
HERE = "tests.verifiers.custom_rewards"


def router(rewards: dict, max_new_tokens: int = 64) -> RewardRouter:
    return RewardRouter.from_config(RewardsConfig.model_validate(rewards), max_new_tokens)


def test_a_custom_batch_verifier_judges_its_tasks_beside_the_built_in_ones():
    r = router({"math": {"weight": 1.0}, "format": {"weight": 0.5},
                "boxed": {"fn": f"{HERE}:answer_format", "weight": 2.0, "tasks": ["poem"],
                          "options": {"pattern": r"reasoning\s*</think>\s*\w+"}}})
    records = [{"task": "math", "answer": "2", "completion": DONE + "$\\boxed{2}$"},
               {"task": "poem", "prompt": "p", "completion": DONE + "roses"},
               {"task": "poem", "prompt": "p", "completion": DONE + "two words"},
               {"task": "chess", "prompt": "p", "completion": DONE + "e4"}]
    scored = r.score(records)
    assert scored.rewards == [1.5, 2.5, 0.5, None]  # chess: no accuracy term covers it
    assert scored.per_verifier["boxed"] == [None, 1.0, 0.0, None]
    assert scored.errors == {"unroutable": 1}
    assert r.tasks() == {"math", "poem"}
    with pytest.raises(UserError, match=r"task\(s\) \['chess'\]"):
        r.check_tasks(records, where="stages[0]")


def test_a_trl_style_function_is_adapted_and_its_none_masks_the_sample():
    r = router({"ifeval": {}, "short": {"fn": f"{HERE}:few_words", "weight": 1.0,
                                        "options": {"limit": 4}}})  # DONE is 2 words
    records = [{"task": "ifeval", "prompt": p, "completion": DONE + c,
                "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]}
               for p, c in [("p", "a"), ("p", "a b c"), ("", "a")]]
    scored = r.score(records)
    assert scored.per_verifier["short"] == [1.0, 0.0, None]
    assert scored.rewards == [2.0, 1.0, None]
    assert scored.errors == {"short": 1}


def test_a_raising_custom_reward_masks_its_samples_and_is_counted_by_name(caplog):
    r = router({"math": {}, "buggy": {"fn": f"{HERE}:broken", "weight": 0.1}})
    records = [{"task": "math", "answer": "1", "completion": DONE + "$\\boxed{1}$"}] * 3
    scored = r.score(records)
    assert scored.rewards == [None] * 3
    assert scored.errors == {"buggy": 3}
    assert "custom_rewards.broken" in caplog.text and "ZeroDivisionError" in caplog.text


def test_ifeval_loose_mode_is_the_verifiers_own_policy():
    record = {"task": "ifeval", "instruction_id_list": ["startend:end_checker"],
              "kwargs": [{"end_phrase": "bye"}], "completion": DONE + "hello bye\n**note**"}
    strict, loose = (router({"ifeval": {"mode": m}}).score([record]).rewards
                     for m in ("strict", "loose"))
    assert (strict, loose) == ([0.0], [1.0])


def test_overlong_defaults_to_the_stage_length_and_its_buffer_fits_inside():
    record = {"task": "math", "answer": "1", "completion": DONE + "$\\boxed{1}$",
              "completion_ids": list(range(12))}
    scored = router({"math": {}, "overlong": {"buffer": 100}}, max_new_tokens=16).score([record])
    assert scored.per_verifier["overlong"] == [pytest.approx(-12 / 16)]


@pytest.mark.parametrize("fn,message", [
    ("no_such_module_xyz:f", "cannot import 'no_such_module_xyz'"),
    (f"{HERE}:missing", "has no 'missing'"),
    (f"{HERE}", "expected 'package.module:function'"),
    (f"{HERE}:wrong_signature", "expected a batch verifier fn(records"),
])
def test_recipe_validation_names_a_custom_function_that_cannot_be_called(fn, message):
    raw = {"name": "r", "model": {"tiny": {}}, "stages": [{
        "name": "rl", "kind": "rl", "data": {"train": [{"synthetic": "arithmetic"}]},
        "rewards": {"math": {}, "mine": {"fn": fn}}}]}
    with pytest.raises(UserError, match=r"stages\[0\]\.rewards\.mine") as e:
        validate(raw)
    assert message in str(e.value)


def test_custom_options_are_checked_and_custom_tasks_are_record_tasks():
    with pytest.raises(ValueError, match="unknown reward: not built in"):
        RewardsConfig.model_validate({"ifevl": {"weight": 1.0}})
    with pytest.raises(ValueError, match=r"options \['colour'\] are not parameters"):
        RewardsConfig.model_validate({"x": {"fn": f"{HERE}:answer_format",
                                            "options": {"colour": 1}}})
    cfg = RewardsConfig.model_validate({"x": {"fn": f"{HERE}:answer_format", "tasks": ["poem"]}})
    assert record_tasks([cfg])[-1] == "poem"

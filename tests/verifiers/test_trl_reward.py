"""Each verifier works as a TRL reward function, alone and inside `trl.GRPOTrainer`."""
from __future__ import annotations

import time

import pytest

from qwqrl.verifiers.format import format_reward
from qwqrl.verifiers.math import math_reward
from qwqrl.verifiers.registry import reward_function

DONE = "reasoning\n</think>\n"


def test_math_reward_takes_completions_and_the_answer_column():
    completions = [DONE + "$\\boxed{4}$", DONE + "$\\boxed{5}$", "unfinished \\boxed{4}"]
    assert math_reward(completions, answer=["4", "4", "4"]) == [1.0, 0.0, 0.0]


def test_reward_functions_accept_chat_message_completions_and_trl_extras():
    completions = [[{"role": "assistant", "content": DONE + "$\\boxed{4}$"}]]
    extras = {"prompts": [[{"role": "user", "content": "2+2?"}]], "completion_ids": [[1, 2]],
              "trainer_state": object(), "log_metric": None}
    assert math_reward(completions, answer=["4"], **extras) == [1.0]
    assert format_reward(completions, **extras) == [1.0]


def test_a_sample_that_cannot_be_judged_is_none_so_trl_masks_it():
    assert math_reward([DONE + "4"], answer=[None]) == [None]


def test_registry_reward_functions_carry_their_options_and_name():
    overlong = reward_function("overlong", max_length=10, buffer=5)
    assert overlong.__name__ == "overlong_reward"
    assert overlong(["x", "y"], completion_ids=[[0] * 5, [0] * 8]) == [0.0, -0.6]


def test_rewards_run_inside_grpo_trainer_on_a_tiny_model(tmp_path):
    datasets = pytest.importorskip("datasets")
    trl = pytest.importorskip("trl")
    from qwqrl.tiny import build_model, build_tokenizer

    calls: dict[str, list[list]] = {}
    answers_seen: set[str] = set()

    def recorded(fn):
        def wrapper(completions, **columns):
            scores = fn(completions, **columns)
            calls.setdefault(fn.__name__, []).append(scores)
            answers_seen.update(columns["answer"])
            return scores
        wrapper.__name__ = fn.__name__
        return wrapper

    tok = build_tokenizer()
    model = build_model(tok)
    rows = [{"prompt": [{"role": "user", "content": f"What is {a} + {b}?"}], "answer": str(a + b)}
            for a, b in [(1, 2), (3, 4), (5, 6), (7, 8)]]
    config = trl.GRPOConfig(
        output_dir=str(tmp_path), max_steps=2, per_device_train_batch_size=4, num_generations=4,
        max_completion_length=12, learning_rate=1e-4, logging_steps=1, report_to="none",
        use_cpu=True, save_strategy="no", seed=0, reward_weights=[1.0, 0.2, 1.0],
    )
    rewards = [recorded(math_reward), recorded(format_reward),
               recorded(reward_function("overlong", max_length=12, buffer=4))]
    trainer = trl.GRPOTrainer(model=model, reward_funcs=rewards, args=config,
                              train_dataset=datasets.Dataset.from_list(rows),
                              processing_class=tok)
    start = time.monotonic()
    trainer.train()
    assert time.monotonic() - start < 120  # ~30 s on 2 idle cores; rewards must never stall it
    assert set(calls) == {"math_reward", "format_reward", "overlong_reward"}
    assert answers_seen <= {"3", "7", "11", "15"} and answers_seen  # the dataset's column
    for name, batches in calls.items():
        for scores in batches:
            assert len(scores) == 4 and all(isinstance(s, float) for s in scores), (name, scores)
    # 12 tokens from a random model: the format and accuracy rewards are 0, and every
    # completion that hit the limit sits at the end of the overlong buffer.
    assert all(s == 0.0 for b in calls["math_reward"] for s in b)
    assert all(-1.0 <= s <= 0.0 for b in calls["overlong_reward"] for s in b)
    logged = [h for h in trainer.state.log_history if "rewards/math_reward/mean" in h]
    assert logged, trainer.state.log_history

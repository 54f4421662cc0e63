"""RewardModelScorer: batching, what is judged, unfinished completions, normalizations, formats."""
from __future__ import annotations

import math
import subprocess
import sys

import pytest

from qwqrl.verifiers.reward_model import (RewardModelScorer, encode_pair, make_rm_reward,
                                          normalize_scores)

PROMPTS = ["Describe the cat.", "Say something kind about the rain.", "Hi",
           [{"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Tell me about tea."}]]
ANSWERS = ["The cat is soft.", "Rain is gentle and it helps the garden grow.", "", "tea " * 30]


def completions(reasoning: str = "Let me think.") -> list[str]:
    return [f"{reasoning}\n</think>\n\n{a}" for a in ANSWERS]


@pytest.fixture(scope="module")
def scorer(rm_dir) -> RewardModelScorer:
    return RewardModelScorer(str(rm_dir), batch_size=3, normalize="none")


@pytest.mark.parametrize("batch_size", [5, 12])  # padded batches: mixed lengths in each
def test_batched_scores_equal_one_by_one(scorer, batch_size):
    prompts, comps = PROMPTS * 3, completions() * 3
    batched = RewardModelScorer(scorer.model, scorer.tokenizer, batch_size=batch_size,
                                normalize="none").raw_scores(prompts, comps)
    single = [scorer.raw_scores([p], [c])[0] for p, c in zip(prompts, comps)]
    assert len(set(round(s, 4) for s in batched)) == len(ANSWERS)  # the inputs really differ
    assert batched == pytest.approx(single, abs=1e-5)


def test_only_the_answer_after_the_last_think_close_is_judged(scorer):
    base = scorer.raw_scores(PROMPTS, completions("short"))
    other_reasoning = scorer.raw_scores(PROMPTS, completions("a much longer\n</think> draft, then"))
    other_answer = scorer.raw_scores(PROMPTS, [c + " Extra." for c in completions("short")])
    assert other_reasoning == pytest.approx(base, abs=1e-5)
    assert all(abs(a - b) > 1e-4 for a, b in zip(other_answer, base))


def test_unfinished_completion_gets_the_minimum_under_every_normalization(scorer):
    comps = completions() + ["still thinking about the cat"]
    prompts = PROMPTS + ["Describe the cat."]
    raw = scorer.raw_scores(prompts, comps)
    assert raw[-1] is None
    for method in ("sigmoid", "none", "zscore"):
        scores = normalize_scores(raw, method)
        assert scores[-1] == min(scores)
    assert normalize_scores(raw, "sigmoid")[-1] == 0.0
    verdict = scorer.verify({"prompt": "Describe the cat.", "completion": "no end"})
    assert verdict.detail == {"verifier": "reward_model", "raw": None, "unfinished": True}


def test_sigmoid_maps_into_unit_interval_keeping_order():
    raw = [-800.0, -2.0, 0.0, 3.5, 800.0]
    scores = normalize_scores(raw, "sigmoid")
    assert scores == sorted(scores) and scores[0] >= 0.0 and scores[-1] <= 1.0
    assert scores[2] == 0.5 and scores[1] == pytest.approx(1 / (1 + math.exp(2.0)))


def test_zscore_is_per_call_mean_zero_std_one_over_finished():
    scores = normalize_scores([1.0, 2.0, 3.0, None], "zscore")
    finished = scores[:3]
    assert sum(finished) == pytest.approx(0.0)
    assert math.sqrt(sum(s * s for s in finished) / 3) == pytest.approx(1.0)
    assert normalize_scores([5.0], "zscore") == [0.0]


def test_normalize_none_returns_the_model_logit(scorer, tokenizer):
    import torch

    ids = encode_pair(tokenizer, PROMPTS[0], ANSWERS[0], 4096)
    with torch.no_grad():
        logit = scorer.model(input_ids=torch.tensor([ids])).logits[0, 0].item()
    assert scorer.score(PROMPTS[:1], completions()[:1]) == pytest.approx([logit], abs=1e-5)


def test_unknown_normalization_is_refused(rm_dir):
    with pytest.raises(ValueError, match="normalization"):
        RewardModelScorer(str(rm_dir), normalize="softmax")


def test_pair_is_formatted_with_the_rm_chat_template_else_concatenated(tokenizer):
    text = tokenizer.decode(encode_pair(tokenizer, "Describe the cat.", "Soft.", 4096))
    assert text == ("<|im_start|>user\nDescribe the cat.<|im_end|>\n"
                    "<|im_start|>assistant\nSoft.<|im_end|>\n")
    no_template = tokenizer.__class__(tokenizer_object=tokenizer.backend_tokenizer,
                                      eos_token=tokenizer.eos_token)
    assert not no_template.chat_template
    assert no_template.decode(encode_pair(no_template, "Q?", "A.", 4096)) == "Q?A.<|im_end|>"
    assert len(encode_pair(tokenizer, "Describe the cat.", "Soft.", 5)) == 5


def test_string_prompt_scores_like_one_user_message(scorer):
    as_text = scorer.raw_scores(["Describe the cat."], completions()[:1])
    as_messages = scorer.raw_scores([[{"role": "user", "content": "Describe the cat."}]],
                                    completions()[:1])
    assert as_text == pytest.approx(as_messages, abs=1e-6)


def test_verify_batch_keeps_order_and_flags_malformed_records(rm_dir):
    scorer = RewardModelScorer(str(rm_dir))
    records = [{"prompt": p, "completion": c} for p, c in zip(PROMPTS, completions())]
    records.insert(1, {"prompt": 42, "completion": "x</think>y"})
    verdicts = scorer.verify_batch(records)
    assert verdicts[1].score is None and "prompt" in verdicts[1].error
    good = [v for i, v in enumerate(verdicts) if i != 1]
    assert [v.score for v in good] == pytest.approx(scorer.score(PROMPTS, completions()), abs=1e-6)
    assert all(0.0 <= v.score <= 1.0 and v.detail["verifier"] == "reward_model" for v in good)
    raw = scorer.raw_scores(PROMPTS, completions())
    assert [v.detail["raw"] for v in good] == pytest.approx(raw)


def test_reward_function_matches_scores_and_masks_malformed_rows(rm_dir):
    scorer = RewardModelScorer(str(rm_dir))
    reward = make_rm_reward(scorer)
    comps = completions()
    assert reward(comps, prompts=PROMPTS) == pytest.approx(scorer.score(PROMPTS, comps), abs=1e-6)
    chat = [[{"role": "assistant", "content": c}] for c in comps]
    assert reward(chat, prompts=PROMPTS) == pytest.approx(scorer.score(PROMPTS, comps), abs=1e-6)
    assert reward(comps[:2], prompts=[PROMPTS[0], 42])[1] is None


def test_registry_general_verifier_uses_the_named_or_environment_rm(rm_dir, monkeypatch):
    from qwqrl.verifiers.registry import verify_batch

    records = [{"task": "general", "prompt": p, "completion": c}
               for p, c in zip(PROMPTS, completions())]
    expected = RewardModelScorer(str(rm_dir)).score(PROMPTS, completions())
    named = verify_batch("general", records, reward_model=str(rm_dir))
    assert [v.score for v in named] == pytest.approx(expected, abs=1e-6)
    monkeypatch.setenv("QWQRL_REWARD_MODEL", str(rm_dir))
    assert [v.score for v in verify_batch("general", records)] == pytest.approx(expected, abs=1e-6)
    monkeypatch.delenv("QWQRL_REWARD_MODEL")
    with pytest.raises(ValueError, match="QWQRL_REWARD_MODEL"):
        verify_batch("general", records)


def test_verifier_module_imports_without_torch():
    code = ("import sys; sys.modules['torch'] = None; sys.modules['transformers'] = None; "
            "import qwqrl.verifiers.reward_model as m; print(m.normalize_scores([0.0], 'sigmoid'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[0.5]"

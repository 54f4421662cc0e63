"""Record-level IFEval verdicts: scoring, loose mode, record validation, the TRL reward, safety."""
import subprocess
import sys
import time

import pytest

from qwqrl.verifiers.ifeval import ifeval_reward, verify
from qwqrl.verifiers.ifeval.language import detect_language
from qwqrl.verifiers.ifeval.registry import INSTRUCTIONS
from qwqrl.verifiers.ifeval.synthetic import make_records
from qwqrl.verifiers.ifeval.verifier import build_checks, judge, loose_variants

LOWER_NO_COMMA = {
    "prompt": "Describe tea. Use lowercase and no commas.",
    "instruction_id_list": ["change_case:english_lowercase", "punctuation:no_comma"],
    "kwargs": [{}, {}],
}


def record(instruction_id, **kwargs):
    return {"prompt": "p", "instruction_id_list": [instruction_id], "kwargs": [kwargs]}


def test_score_is_the_fraction_of_instructions_followed_strictly():
    answer = "tea is a hot drink, made from leaves, enjoyed around the world every day."
    verdict = verify(LOWER_NO_COMMA, f"<think>Let me think.</think>{answer}")
    assert verdict.error is None
    assert verdict.score == 0.5
    assert verdict.detail == {"verifier": "ifeval", "followed": [True, False],
                              "followed_loose": [True, False]}


def test_only_the_text_after_the_last_think_close_is_judged():
    completion = "<think>Commas, Capitals.</think>draft</think>tea is a hot drink made from leaves."
    assert verify(LOWER_NO_COMMA, completion).score == 1.0


def test_unfinished_reasoning_scores_zero_and_follows_nothing():
    verdict = verify(LOWER_NO_COMMA, "<think>still thinking, about tea")
    assert verdict.score == 0.0
    assert verdict.detail["unfinished"] is True
    assert verdict.detail["followed"] == verdict.detail["followed_loose"] == [False, False]


def test_without_a_forced_think_a_plain_completion_is_judged_whole():
    verdict = verify(LOWER_NO_COMMA, "tea is a hot drink made from leaves.", think_opened=False)
    assert verdict.score == 1.0


def test_chat_message_completions_are_accepted():
    messages = [{"role": "assistant", "content": "</think>tea is a hot drink made from leaves."}]
    assert verify(LOWER_NO_COMMA, messages).score == 1.0


def test_none_valued_kwargs_are_dropped_as_in_the_hf_copy_of_ifeval():
    rec = record("length_constraints:number_words", num_words=3, relation="less than",
                 keywords=None, num_highlights=None, language=None)
    assert verify(rec, "</think>two words").score == 1.0


def test_loose_variants_are_the_official_eight_in_order():
    assert loose_variants("a*\nb\nc*") == [
        "a*\nb\nc*", "a\nb\nc", "b\nc*", "a*\nb", "b", "b\nc", "a\nb", "b"]


@pytest.mark.parametrize("rec, answer", [
    # a preamble line before the JSON
    (record("detectable_format:json_format"), 'Sure, here it is:\n{"a": 1}'),
    # a closing remark after the phrase
    (record("startend:end_checker", end_phrase="Is there anything else I can help with?"),
     "Answer.\nIs there anything else I can help with?\nHave a nice day!"),
    # markdown bold around the constrained answer's line breaks the quotation only via stars
    (record("startend:quotation"), '**"Quoted answer."**'),
    # both the first and the last line are chatter
    (record("detectable_format:json_format"), 'Here you go:\n["x"]\nHope it helps!'),
    # stars removed and the first line dropped
    (record("combination:repeat_prompt", prompt_to_repeat="Say hi"), "Sure!\n**Say hi** hi"),
])
def test_loose_mode_forgives_what_strict_mode_does_not(rec, answer):
    verdict = verify(rec, f"</think>{answer}")
    assert verdict.detail["followed"] == [False]
    assert verdict.detail["followed_loose"] == [True]
    assert verdict.score == 0.0


def test_loose_mode_still_fails_a_response_that_does_not_follow_anywhere():
    verdict = verify(record("punctuation:no_comma"), "</think>a, b\nc, d\ne, f")
    assert verdict.detail == {"verifier": "ifeval", "followed": [False], "followed_loose": [False]}


@pytest.mark.parametrize("rec, fragments", [
    (record("keywords:nonexistent"), ["unknown instruction id", "keywords:nonexistent"]),
    (record("length_constraints:number_words", num_words=5, relation="at most"),
     ["length_constraints:number_words", "'relation'", "'less than'", "'at most'"]),
    (record("length_constraints:number_words", num_words=5),
     ["missing kwarg 'relation'"]),
    (record("punctuation:no_comma", num_words=5), ["unexpected kwarg", "num_words"]),
    (record("keywords:letter_frequency", letter="ab", let_frequency=2, let_relation="at least"),
     ["'letter'", "single non-space character", "'ab'"]),
    (record("language:response_language", language="xx"), ["'language'", "ISO 639-1", "'xx'"]),
    (record("detectable_format:number_bullet_lists", num_bullets=-1),
     ["'num_bullets'", "non-negative integer"]),
    (record("detectable_format:number_bullet_lists", num_bullets="3"),
     ["'num_bullets'", "non-negative integer", "'3'"]),
    (record("keywords:existence", keywords=[]), ["'keywords'", "non-empty list"]),
    (record("length_constraints:nth_paragraph_first_word", num_paragraphs=2, nth_paragraph=3,
            first_word="so"), ["'nth_paragraph'", "at most num_paragraphs"]),
    (record("combination:repeat_prompt"), ["missing kwarg 'prompt_to_repeat'"]),
    ({"instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}, {}]},
     ["kwargs must be a list of 1 dicts"]),
    ({"instruction_id_list": [], "kwargs": []}, ["non-empty list"]),
    ({"instruction_id_list": ["punctuation:no_comma"], "kwargs": ["x"]}, ["kwargs must be a dict"]),
])
def test_unjudgeable_records_get_no_score_and_a_precise_error(rec, fragments):
    verdict = verify(rec, "</think>fine")
    assert verdict.score is None
    for fragment in fragments:
        assert fragment in verdict.error


def test_integral_float_kwargs_are_accepted():
    assert verify(record("detectable_format:number_bullet_lists", num_bullets=2.0),
                  "</think>* a\n* b").score == 1.0


def test_reward_takes_trl_columns_and_masks_unjudgeable_rows():
    completions = ["</think>tea is a hot drink made from leaves.", "<think>unfinished",
                   "</think>anything"]
    ids = [LOWER_NO_COMMA["instruction_id_list"]] * 2 + [["no:such_id"]]
    kwargs = [LOWER_NO_COMMA["kwargs"]] * 2 + [[{}]]
    rewards = ifeval_reward(completions, ids, kwargs, prompts=["p"] * 3, key=[1, 2, 3],
                            trainer_state=None)
    assert rewards == [1.0, 0.0, None]


def test_reward_rejects_misaligned_columns():
    with pytest.raises(ValueError):
        ifeval_reward(["a", "b"], [["punctuation:no_comma"]], [[{}]])


def test_language_detection_is_deterministic_and_leaves_langdetect_global_seed_alone():
    import langdetect

    before = langdetect.DetectorFactory.seed
    text = "hello"  # short and ambiguous: unseeded langdetect flips between nl and fi
    assert len({detect_language(text) for _ in range(20)}) == 1
    assert langdetect.DetectorFactory.seed == before


def test_hostile_responses_are_judged_in_bounded_time():
    kwargs = {
        "keywords:existence": {"keywords": ["a.b"]},
        "keywords:frequency": {"keyword": "a", "frequency": 3, "relation": "at least"},
        "keywords:forbidden_words": {"forbidden_words": ["(a+)+$"]},
        "keywords:letter_frequency": {"letter": "e", "let_frequency": 3, "let_relation": "less than"},
        "language:response_language": {"language": "fr"},
        "length_constraints:number_sentences": {"num_sentences": 3, "relation": "less than"},
        "length_constraints:number_paragraphs": {"num_paragraphs": 3},
        "length_constraints:number_words": {"num_words": 10, "relation": "less than"},
        "length_constraints:nth_paragraph_first_word":
            {"num_paragraphs": 2, "nth_paragraph": 1, "first_word": "so"},
        "detectable_content:number_placeholders": {"num_placeholders": 2},
        "detectable_content:postscript": {"postscript_marker": "P.S."},
        "detectable_format:number_bullet_lists": {"num_bullets": 2},
        "detectable_format:multiple_sections": {"section_spliter": "Section", "num_sections": 2},
        "detectable_format:number_highlighted_sections": {"num_highlights": 2},
        "combination:repeat_prompt": {"prompt_to_repeat": "Say hi"},
        "startend:end_checker": {"end_phrase": "Bye."},
        "change_case:capital_word_frequency": {"capital_frequency": 2, "capital_relation": "at least"},
    }
    checks = build_checks({"instruction_id_list": list(INSTRUCTIONS),
                           "kwargs": [kwargs.get(i, {}) for i in INSTRUCTIONS]})
    n = 60_000
    for text in ("\n" * n, " \n\t" * n, "[" * n, "<" * n, "*" * n, "* \n" * n, "-\n" * n,
                 ". " * n, "a!!" * n, "x.)" * n, "A. " * n, "a" * n + "!", "[" * n + "]" * n):
        start = time.monotonic()
        strict, loose = judge(checks, text)
        assert len(strict) == len(loose) == len(INSTRUCTIONS)
        assert time.monotonic() - start < 15, repr(text[:10])


def test_user_patterns_with_regex_syntax_are_matched_literally():
    rec = record("keywords:existence", keywords=["(a+)+$"])
    assert verify(rec, "</think>" + "a" * 5000 + "!").score == 0.0
    assert verify(rec, "</think>see (a+)+$ here").score == 1.0


def test_plain_user_patterns_keep_the_official_regex_wildcard():
    rec = record("keywords:frequency", keyword="c.t", frequency=2, relation="at least")
    assert verify(rec, "</think>a cat and a cut").score == 1.0


def test_importing_needs_neither_torch_nor_nltk():
    code = ("import sys, qwqrl.verifiers.ifeval as m; "
            "m.verify({'instruction_id_list': ['punctuation:no_comma'], 'kwargs': [{}]}, '</think>a'); "
            "print('torch' in sys.modules, 'nltk' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_synthetic_records_are_reproducible_and_judgeable():
    records = make_records(40, seed=3)
    assert records == make_records(40, seed=3)
    assert records != make_records(40, seed=4)
    assert len(records) == 40
    for rec in records:
        assert len(build_checks(rec)) == len(rec["instruction_id_list"]) >= 1
        assert verify(rec, "<think>no answer").score == 0.0


def test_synthetic_lowercase_record_rewards_a_compliant_answer():
    rec = next(r for r in make_records(200, seed=0)
               if r["instruction_id_list"] == ["change_case:english_lowercase"])
    assert "lowercase" in rec["prompt"]
    assert verify(rec, "</think>my ideal weekend is quiet and slow with long walks outside.").score == 1.0

"""Instruction ids of the official IFEval registry, the kwargs each takes, and their validation.

Where the official eval meets a missing or out-of-range kwarg it draws a random value, and where it
meets an unexpected one it raises; neither can give a reproducible reward, so `bind` rejects both
with an `InstructionError` that names the instruction, the kwarg and what was expected. Valid
kwargs are normalised as the official `build_description` does (strings stripped, the letter and
first word lower-cased) and bound to the check.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, NamedTuple

from . import instructions as ins
from .language import LANGUAGE_CODES

Check = Callable[[str], bool]


class InstructionError(ValueError):
    """A record names an unknown instruction or gives it kwargs it cannot be judged with."""


def _count(value: Any) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("a non-negative integer")
    return value


def _positive(value: Any) -> int:
    try:
        count = _count(value)
    except ValueError:
        count = 0
    if count == 0:
        raise ValueError("a positive integer")
    return count


def _relation(value: Any) -> str:
    if value not in ins.RELATIONS:
        raise ValueError(f"one of {list(ins.RELATIONS)}")
    return value


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("a string")
    return value.strip()


def _word(value: Any) -> str:
    word = _string(value)
    if not word:
        raise ValueError("a non-empty string")
    return word


def _lower_word(value: Any) -> str:
    return _word(value).lower()


def _words(value: Any) -> list[str]:
    if (isinstance(value, str) or not isinstance(value, (list, tuple)) or not value
            or not all(isinstance(w, str) and w for w in value)):
        raise ValueError("a non-empty list of non-empty strings")
    return list(value)


def _letter(value: Any) -> str:
    if not isinstance(value, str) or len(value) != 1 or value.isspace():
        raise ValueError("a single non-space character")
    return value.lower()


def _language(value: Any) -> str:
    if value not in LANGUAGE_CODES:
        raise ValueError(f"an ISO 639-1 code among {sorted(LANGUAGE_CODES)}")
    return value


class Instruction(NamedTuple):
    check: Callable[..., bool]
    params: Mapping[str, Callable[[Any], Any]]


_KEYWORD_FREQUENCY = {"keyword": _word, "frequency": _count, "relation": _relation}

INSTRUCTIONS: Mapping[str, Instruction] = {
    "keywords:existence": Instruction(ins.keywords_existence, {"keywords": _words}),
    "keywords:frequency": Instruction(ins.keywords_frequency, _KEYWORD_FREQUENCY),
    "keywords:forbidden_words": Instruction(ins.keywords_forbidden_words,
                                            {"forbidden_words": _words}),
    "keywords:letter_frequency": Instruction(
        ins.keywords_letter_frequency,
        {"letter": _letter, "let_frequency": _count, "let_relation": _relation}),
    "language:response_language": Instruction(ins.response_language, {"language": _language}),
    "length_constraints:number_sentences": Instruction(
        ins.number_sentences, {"num_sentences": _count, "relation": _relation}),
    "length_constraints:number_paragraphs": Instruction(ins.number_paragraphs,
                                                        {"num_paragraphs": _count}),
    "length_constraints:number_words": Instruction(ins.number_words,
                                                   {"num_words": _count, "relation": _relation}),
    "length_constraints:nth_paragraph_first_word": Instruction(
        ins.nth_paragraph_first_word,
        {"num_paragraphs": _count, "nth_paragraph": _positive, "first_word": _lower_word}),
    "detectable_content:number_placeholders": Instruction(ins.number_placeholders,
                                                          {"num_placeholders": _count}),
    "detectable_content:postscript": Instruction(ins.postscript, {"postscript_marker": _word}),
    "detectable_format:number_bullet_lists": Instruction(ins.number_bullet_lists,
                                                         {"num_bullets": _count}),
    "detectable_format:constrained_response": Instruction(ins.constrained_response, {}),
    "detectable_format:number_highlighted_sections": Instruction(
        ins.number_highlighted_sections, {"num_highlights": _count}),
    "detectable_format:multiple_sections": Instruction(
        ins.multiple_sections, {"section_spliter": _word, "num_sections": _count}),
    "detectable_format:json_format": Instruction(ins.json_format, {}),
    "detectable_format:title": Instruction(ins.title, {}),
    "combination:two_responses": Instruction(ins.two_responses, {}),
    "combination:repeat_prompt": Instruction(ins.repeat_prompt, {"prompt_to_repeat": _word}),
    "startend:end_checker": Instruction(ins.end_checker, {"end_phrase": _string}),
    "change_case:capital_word_frequency": Instruction(
        ins.capital_word_frequency, {"capital_frequency": _count, "capital_relation": _relation}),
    "change_case:english_capital": Instruction(ins.english_capital, {}),
    "change_case:english_lowercase": Instruction(ins.english_lowercase, {}),
    "punctuation:no_comma": Instruction(ins.no_comma, {}),
    "startend:quotation": Instruction(ins.quotation, {}),
}


def bind(instruction_id: str, kwargs: Mapping[str, Any] | None) -> Check:
    """The check for one instruction of a record; None-valued kwargs are dropped first."""
    instruction = INSTRUCTIONS.get(instruction_id)
    if instruction is None:
        raise InstructionError(f"unknown instruction id {instruction_id!r}; expected one of the "
                               f"{len(INSTRUCTIONS)} official IFEval ids")
    if kwargs is not None and not isinstance(kwargs, Mapping):
        raise InstructionError(f"{instruction_id}: kwargs must be a dict, "
                               f"got {type(kwargs).__name__}")
    given = {k: v for k, v in (kwargs or {}).items() if v is not None}
    expected = instruction.params
    unexpected = sorted(set(given) - set(expected))
    if unexpected:
        raise InstructionError(f"{instruction_id}: unexpected kwarg(s) {unexpected}; "
                               f"it takes {sorted(expected) or 'none'}")
    bound = {}
    for name, parse in expected.items():
        if name not in given:
            raise InstructionError(f"{instruction_id}: missing kwarg {name!r}; it takes "
                                   f"{sorted(expected)}")
        try:
            bound[name] = parse(given[name])
        except ValueError as e:
            raise InstructionError(f"{instruction_id}: kwarg {name!r} must be {e}, "
                                   f"got {given[name]!r}") from None
    if bound.get("nth_paragraph", 0) > bound.get("num_paragraphs", 0):
        raise InstructionError(f"{instruction_id}: kwarg 'nth_paragraph' must be at most "
                               f"num_paragraphs ({bound['num_paragraphs']}), "
                               f"got {bound['nth_paragraph']}")
    return partial(instruction.check, **bound)

"""The IFEval checks: one function per instruction, with the official `check_following` semantics.

Each takes the response and the instruction's (already validated) kwargs and says whether the
response follows it. Where the official code runs a regular expression over the whole response,
the equivalent here is written to run in linear time, since responses come from a policy under
training and can be huge or degenerate (long runs of blank lines, brackets or angle brackets).
User-supplied words (keywords, markers, section splitters) are regular expressions in the official
code; they are used as such when they are plain text with at most `.` wildcards, and escaped
otherwise, so a record cannot smuggle in a catastrophic pattern.
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator

from .language import detect_language
from .punkt import count_sentences
from .text import count_capital_words, count_words

LESS_THAN, AT_LEAST = "less than", "at least"
RELATIONS = (LESS_THAN, AT_LEAST)
CONSTRAINED_RESPONSES = ("My answer is yes.", "My answer is no.", "My answer is maybe.")

_REGEX_SYNTAX = re.compile(r"[\\^$*+?{}\[\]()|]")
_NON_SPACE = re.compile(r"\S")
_PARAGRAPH_DIVIDER = re.compile(r"\s?\*\*\*\s?")
_HIGHLIGHT = re.compile(r"\*[^\n*]*\*")
_DOUBLE_HIGHLIGHT = re.compile(r"\*\*[^\n*]*\*\*")
_WORD_HEAD = re.compile(r"[^.,?!'\"]*")
_JSON_FENCES = ("```json", "```Json", "```JSON", "```")


def compare(count: int, relation: str, threshold: int) -> bool:
    return count < threshold if relation == LESS_THAN else count >= threshold


def user_pattern(word: str, flags: int = 0, before: str = "", after: str = "") -> re.Pattern[str]:
    """`before + word + after` as the official regex, `word` escaped if it has regex syntax."""
    body = re.escape(word) if _REGEX_SYNTAX.search(word) else word
    return re.compile(before + body + after, flags)


def _line_item_ends(text: str, item_start: Callable[[str, int], int | None]) -> Iterator[int]:
    """End offsets of the matches of `^\\s*<item>.*$` (re.MULTILINE), found in linear time.

    A match starts at a line start, skips whitespace (line breaks included) and needs the item
    marker at the first non-space character; `item_start` returns where the marker's `.*` tail
    begins, or None. Line starts whose first non-space character was already rejected are skipped
    instead of rescanned, which is what keeps long runs of blank lines linear.
    """
    pos, n = 0, len(text)
    while pos < n:
        found = _NON_SPACE.search(text, pos)
        if found is None:
            return
        tail = item_start(text, found.start())
        if tail is None:
            newline = text.find("\n", found.start())
            if newline < 0:
                return
            pos = newline + 1
            continue
        end = text.find("\n", tail)
        end = n if end < 0 else end
        yield end
        pos = end if text[end - 1] == "\n" else end + 1


def _star_item(text: str, i: int) -> int | None:
    ok = text[i] == "*" and i + 1 < len(text) and text[i + 1] != "*"
    return i + 2 if ok else None


def _dash_item(text: str, i: int) -> int | None:
    return i + 1 if text[i] == "-" else None


# keywords:*

def keywords_existence(text: str, *, keywords: list[str]) -> bool:
    return all(user_pattern(k, re.IGNORECASE).search(text) for k in keywords)


def keywords_frequency(text: str, *, keyword: str, frequency: int, relation: str) -> bool:
    found = sum(1 for _ in user_pattern(keyword, re.IGNORECASE).finditer(text))
    return compare(found, relation, frequency)


def keywords_forbidden_words(text: str, *, forbidden_words: list[str]) -> bool:
    return not any(user_pattern(word, re.IGNORECASE, r"\b", r"\b").search(text)
                   for word in forbidden_words)


def keywords_letter_frequency(text: str, *, letter: str, let_frequency: int,
                              let_relation: str) -> bool:
    return compare(text.lower().count(letter), let_relation, let_frequency)


# language:*

def response_language(text: str, *, language: str) -> bool:
    detected = detect_language(text)
    return detected is None or detected == language


# length_constraints:*

def number_sentences(text: str, *, num_sentences: int, relation: str) -> bool:
    return compare(count_sentences(text), relation, num_sentences)


def number_paragraphs(text: str, *, num_paragraphs: int) -> bool:
    """Paragraphs are separated by `***`; empty ones count only at the very start or end."""
    paragraphs = _PARAGRAPH_DIVIDER.split(text)
    count = len(paragraphs)
    for index, paragraph in enumerate(paragraphs):
        if not paragraph.strip():
            if index not in (0, len(paragraphs) - 1):
                return False
            count -= 1
    return count == num_paragraphs


def number_words(text: str, *, num_words: int, relation: str) -> bool:
    return compare(count_words(text), relation, num_words)


def nth_paragraph_first_word(text: str, *, num_paragraphs: int, nth_paragraph: int,
                             first_word: str) -> bool:
    """Paragraphs split on "\\n\\n"; the nth's first word, cut at `.,?!'"`, lower-cased."""
    paragraphs = text.split("\n\n")
    count = sum(1 for p in paragraphs if p.strip())
    if nth_paragraph > count:
        return False
    paragraph = paragraphs[nth_paragraph - 1].strip()
    if not paragraph:
        return False
    word = paragraph.split()[0].strip().lstrip("'").lstrip('"')
    head = _WORD_HEAD.match(word).group(0).lower()
    return count == num_paragraphs and head == first_word


# detectable_content:*

def number_placeholders(text: str, *, num_placeholders: int) -> bool:
    """`[...]` spans within one line (the official `\\[.*?\\]`)."""
    found = 0
    for line in text.split("\n"):
        close_at = -1
        while (open_at := line.find("[", close_at + 1)) >= 0:
            close_at = line.find("]", open_at + 1)
            if close_at < 0:
                break
            found += 1
    return found >= num_placeholders


def postscript(text: str, *, postscript_marker: str) -> bool:
    text = text.lower()
    if postscript_marker == "P.P.S":
        pattern = re.compile(r"p\.\s?p\.\s?s")
    elif postscript_marker == "P.S.":
        pattern = re.compile(r"p\.\s?s\.")
    else:
        pattern = user_pattern(postscript_marker.lower())
    return pattern.search(text) is not None


# detectable_format:*

def number_bullet_lists(text: str, *, num_bullets: int) -> bool:
    """Lines starting `* ` (not `**`) plus lines starting `-`, as the official two regexes count."""
    stars = sum(1 for _ in _line_item_ends(text, _star_item))
    dashes = sum(1 for _ in _line_item_ends(text, _dash_item))
    return stars + dashes == num_bullets


def constrained_response(text: str) -> bool:
    text = text.strip()
    return any(option in text for option in CONSTRAINED_RESPONSES)


def number_highlighted_sections(text: str, *, num_highlights: int) -> bool:
    single = sum(1 for m in _HIGHLIGHT.finditer(text) if m.group(0).strip("*").strip())
    double = sum(1 for m in _DOUBLE_HIGHLIGHT.finditer(text) if m.group(0)[2:-2].strip())
    return single + double >= num_highlights


def multiple_sections(text: str, *, section_spliter: str, num_sections: int) -> bool:
    """Sections open with `<spliter> <number>`; the text before the first does not count."""
    splitter = user_pattern(section_spliter, 0, r"\s?", r"\s?\d+\s?")
    return sum(1 for _ in splitter.finditer(text)) >= num_sections


def json_format(text: str) -> bool:
    text = text.strip()
    for fence in _JSON_FENCES:
        text = text.removeprefix(fence)
    text = text.removesuffix("```").strip()
    try:
        json.loads(text)
    except (ValueError, RecursionError):
        return False
    return True


def title(text: str) -> bool:
    """A `<<...>>` within one line with something besides brackets and spaces inside."""
    for line in text.split("\n"):
        start, end = line.find("<<"), line.rfind(">>")
        if start >= 0 and end >= start + 3 and line[start:end + 2].lstrip("<").rstrip(">").strip():
            return True
    return False


# combination:*

def two_responses(text: str) -> bool:
    """Exactly two different non-empty answers around `******`."""
    parts = text.split("******")
    answers = []
    for index, part in enumerate(parts):
        if part.strip():
            answers.append(part)
        elif index not in (0, len(parts) - 1):
            return False
    return len(answers) == 2 and answers[0].strip() != answers[1].strip()


def repeat_prompt(text: str, *, prompt_to_repeat: str) -> bool:
    return text.strip().lower().startswith(prompt_to_repeat.strip().lower())


# startend:*

def end_checker(text: str, *, end_phrase: str) -> bool:
    return text.strip().strip('"').lower().endswith(end_phrase.strip().lower())


def quotation(text: str) -> bool:
    text = text.strip()
    return len(text) > 1 and text[0] == '"' and text[-1] == '"'


# change_case:*

def capital_word_frequency(text: str, *, capital_frequency: int, capital_relation: str) -> bool:
    return compare(count_capital_words(text), capital_relation, capital_frequency)


def english_capital(text: str) -> bool:
    return text.isupper() and detect_language(text) in (None, "en")


def english_lowercase(text: str) -> bool:
    return text.islower() and detect_language(text) in (None, "en")


# punctuation:*

def no_comma(text: str) -> bool:
    return "," not in text

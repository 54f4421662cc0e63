"""Word counting as the official IFEval checks count, offline and in linear time.

`count_words` is exactly `nltk.tokenize.RegexpTokenizer(r"\\w+")`. `count_capital_words` stands in
for counting the all-capital tokens of `nltk.word_tokenize`, which needs the Punkt download. The
count only changes where the Treebank tokenizer splits two cased pieces apart, so this splits where
it does (brackets, quotes, `;@#$%&?!*`, dashes, ellipses, `:`/`,` before a non-digit, contractions
such as DON'T -> DO N'T, a quote opening a word) and skips the splits that cannot change the count
(the sentence-final period, which is why no sentence splitting is needed).
"""
from __future__ import annotations

import re

_WORD = re.compile(r"\w+")
_SPLIT = re.compile(
    "[\u00ab\u201c\u2018\u201e`\"\u00bb\u201d\u2019;@#$%&?!*\\[\\](){}<>\u2012-\u2015]"
    r"|--|''|\.{2,}|[:,](?!\d)"
)
_TRAILING_APOSTROPHE = re.compile(r"([^'])' ")
_OPENING_APOSTROPHE = re.compile(r"(?i)(?<!\w)'(?!(?:re|ve|ll|m|t|s|d|n)\b)(?=\w)")
# A clitic is split off at the end of a token; a sentence-final period is split off first.
_CLITIC = re.compile(r"([^' ])('[sSmMdD]|'ll|'LL|'re|'RE|'ve|'VE|n't|N'T|')(?=\.? )")
_FUSED = re.compile(
    r"(?i)\b(can)(not)\b|\b(d)('ye)\b|\b(gim)(me)\b|\b(gon)(na)\b|\b(got)(ta)\b|\b(lem)(me)\b"
    r"|\b(more)('n)\b|\b(wan)(na)(?=\s)"
)


def count_words(text: str) -> int:
    """Number of `\\w+` runs."""
    return sum(1 for _ in _WORD.finditer(text))


def _split_fused(match: re.Match[str]) -> str:
    first, second = (g for g in match.groups() if g is not None)
    return f"{first} {second}"


def capital_word_tokens(text: str) -> list[str]:
    """Tokens as `nltk.word_tokenize` cuts them, wherever that decides which are all-capital."""
    spaced = _TRAILING_APOSTROPHE.sub(r"\1 ' ", _SPLIT.sub(" ", text))
    spaced = _OPENING_APOSTROPHE.sub("' ", spaced)
    spaced = _CLITIC.sub(r"\1 \2", " " + " ".join(spaced.split()) + " ")
    return _FUSED.sub(_split_fused, spaced).split()


def count_capital_words(text: str) -> int:
    """Number of tokens whose cased characters are all upper case (`str.isupper`)."""
    return sum(1 for token in capital_word_tokens(text) if token.isupper())

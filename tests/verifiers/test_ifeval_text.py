"""Sentence and word counting pinned to what NLTK's Punkt model and word_tokenize give.

Every expected count below was checked against NLTK 3.10 with the English punkt_tab model.
"""
import pytest

from qwqrl.verifiers.ifeval.punkt import count_sentences, sentence_spans
from qwqrl.verifiers.ifeval.text import count_capital_words, count_words


@pytest.mark.parametrize("text, expected", [
    ("", 0),
    ("   \n ", 0),
    ("Hello world", 1),
    ("Hello world.", 1),
    ("One. Two. Three.", 3),
    ("One! Two? Three.", 3),
    ("Really?! Yes.", 2),
    ("Hi!!! Bye.", 2),
    ("No space.Next one.", 1),
    # abbreviations from the model do not end sentences ...
    ("Dr. Smith arrived. He sat down.", 2),
    ("Mr. and Mrs. Jones left.", 1),
    ("Prof. Xavier teaches. Students learn.", 2),
    ("Go to St. Louis. It is nice.", 2),
    ("The U.S. Army is big.", 1),
    # ... unless a frequent sentence starter follows
    ("The U.S. It is big.", 2),
    ("It was 5 p.m. The shop shut.", 2),
    # e.g. and etc. are not abbreviations in the English model
    ("See e.g. the docs. Done.", 3),
    ("Apples, pears, etc. and more.", 2),
    # decimals, numbers and ordinals
    ("It cost 3.5 dollars. Cheap.", 2),
    ("We met in 2023. Then we left.", 2),
    ("He scored 10. the crowd cheered.", 1),
    ("1. First item\n2. Second item", 3),
    ("1. the first\n2. the second", 1),
    ("5. Business plan", 1),
    # initials: a name continues, a common word starts a sentence
    ("J. K. Rowling wrote it. It sold well.", 2),
    ("Option A. This works.", 2),
    ("I. Introduction\nII. Methods\nIII. Results", 4),
    ("B. Community engagement\nC. Public safety", 2),
    ("George W. Bush spoke. He left.", 2),
    ("Solve for x. Given that y is 2, we get 4.", 2),
    ("It lies in X. Conversely, it does not.", 1),  # a word the model never saw in lower case
    ("The letter x. the end.", 1),
    # single letters that are also model abbreviations never end a sentence
    ("Vitamin C. It helps.", 1),
    # ellipses
    ("Wait... what happened?", 1),
    ("Wait... What happened?", 1),
    ("Wait... So it goes.", 2),
    ("Ellipsis . . . then more. End.", 5),
    # closing quotes and brackets stay with their sentence
    ('He said "Hi." Then he left.', 2),
    ("(This is one.) This is two.", 2),
    ("\u201cQuoted.\u201d Next one.", 2),
    # line breaks alone do not end sentences
    ("Title\n\nA paragraph without a period\n\nAnother one", 1),
    ("Visit example.com today. OK.", 2),
])
def test_count_sentences_matches_punkt(text, expected):
    assert count_sentences(text) == expected


def test_sentence_spans_cover_the_sentences_with_their_closing_quote():
    text = 'He said "Hi." Then he left.  '
    assert [text[s:e] for s, e in sentence_spans(text)] == ['He said "Hi."', "Then he left."]


@pytest.mark.parametrize("text, expected", [
    ("", 0),
    ("hello world", 2),
    ("don't stop", 3),          # \w+ splits at the apostrophe
    ("well-known fact", 3),
    ("3.5 percent, 10%", 4),
    ("caf\u00e9 na\u00efve", 2),  # unicode word characters
    ("snake_case_name", 1),
    ("*** --- !!!", 0),
])
def test_count_words_is_the_official_w_plus_tokenizer(text, expected):
    assert count_words(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("I AM HERE", 3),
    ("hello World", 0),
    ("DON'T STOP", 3),       # DO N'T STOP
    ("IT'S FINE", 3),        # IT 'S FINE
    ("JOHN'S CAR.", 3),      # the sentence-final period is split off before the clitic
    ("CANNOT WAIT", 3),      # CAN NOT WAIT
    ("GONNA GO", 3),
    ("'TIS TRUE", 2),        # an opening quote is split off the word, 'TIS stays whole
    ("MID-'90S", 2),
    ("THE STUDENT''S SCORE", 4),  # '' is a closing quote
    ("A'D' + B'E'", 3),           # a trailing quote goes first, then the clitic 'D
    ("JAMES' CAR", 2),
    ("WELL-KNOWN FACT", 2),  # hyphenated words stay whole
    ("AND/OR", 1),
    ("HELLO,WORLD", 2),
    ("ABC,1DEF", 1),         # a comma before a digit does not split
    ("WAIT...NO", 2),
    ("EN\u2014DASH", 2),
    ("(OK)", 1),
    ("U.S. ARMY", 2),
    ("NASA's plan", 1),
    ("I'm", 1),
    ("X2 Y3", 2),
    ("\u00c9COLE", 1),
    ("A*B", 2),
])
def test_count_capital_words_matches_word_tokenize(text, expected):
    assert count_capital_words(text) == expected

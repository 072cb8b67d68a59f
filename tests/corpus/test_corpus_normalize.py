"""Normalization to LibriSpeech conventions, and sentence splitting."""

from __future__ import annotations

import re

import pytest

from wav2vec2.corpus.normalize import (
    normalize_sentence,
    normalize_transcript,
    split_sentences,
)

TRANSCRIPT = re.compile(r"[A-Z']+( [A-Z']+)*")


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ("Hello, world!", "HELLO WORLD"),
        ("  It's   to-morrow,  Mr. Darcy. ", "IT'S TO MORROW MISTER DARCY"),
        ("Good-bye, Mrs. Smith and Dr. Watson.", "GOOD BYE MISSUS SMITH AND DOCTOR WATSON"),
        ("\u201cWhy?\u201d she asked \u2014 softly\u2026", "WHY SHE ASKED SOFTLY"),
        ("The caf\u00e9 is na\u00efve.", "THE CAFE IS NAIVE"),
        ("'Tis the season, isn't it?", "TIS THE SEASON ISN'T IT"),
        ("I am here (at last).", "I AM HERE AT LAST"),
        ("O sing unto the Lord a new song.", "O SING UNTO THE LORD A NEW SONG"),
        ("No.", "NO"),
    ],
)
def test_kept_sentences(raw: str, words: str) -> None:
    sentence = normalize_sentence(raw)
    assert sentence is not None
    assert sentence.words == words
    assert TRANSCRIPT.fullmatch(sentence.words)


@pytest.mark.parametrize(
    "raw",
    [
        "I have 3 cats.",  # digits
        "It costs $5 or 10%.",  # symbols
        "Fish & chips.",
        "NASA launched it.",  # acronym
        "The USA is large.",
        "J. Smith wrote it.",  # initial
        "Bring apples, pears, etc.",  # abbreviation
        "Col. Brandon came.",
        "Henry VIII had six wives.",  # Roman numeral
        "Hmm, let me think.",  # vowel-less token a TTS engine spells out
        "email me at a@b.org",
        "The \u00e6sthetic movement.",  # a letter that does not fold to ASCII
        "",
    ],
)
def test_dropped_sentences(raw: str) -> None:
    assert normalize_sentence(raw) is None


def test_spoken_text_has_exactly_the_transcript_words() -> None:
    sentence = normalize_sentence('"Well," said he; "Mr. Knightley is come -- at last!"')
    assert sentence is not None
    spoken_words = re.findall(r"[a-z']+", sentence.spoken)
    assert " ".join(spoken_words).upper() == sentence.words
    assert sentence.spoken.endswith("!")
    assert not re.search(r"[^a-z' .,;:!?]", sentence.spoken)
    assert sentence.num_words == len(sentence.words.split())


def test_word_count_limits() -> None:
    assert normalize_sentence("one two", min_words=3) is None
    assert normalize_sentence("one two three", min_words=3) is not None
    assert normalize_sentence("one two three four", max_words=3) is None


def test_split_sentences_keeps_titles() -> None:
    text = 'He came.  Mr. Darcy left! "Why?" she asked. The end'
    assert split_sentences(text) == ["He came.", "Mr. Darcy left!", '"Why?" she asked.', "The end"]


def test_normalize_transcript_keeps_what_the_vocabulary_check_must_see() -> None:
    assert normalize_transcript("Hello, world! It's 3 o'clock.") == "HELLO WORLD IT'S 3 O'CLOCK"
    assert normalize_transcript("  'quoted'  -- dash ") == "QUOTED DASH"

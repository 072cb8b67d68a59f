"""Text normalization to LibriSpeech conventions, and sentence splitting.

A transcript is upper-case words of ``A``-``Z`` and the apostrophe, joined by single spaces.
The text given to a TTS engine is built from the *same* words (lower case), keeping only
the punctuation that shapes prosody, so the audio says exactly what the label says.
Anything a TTS engine would expand on its own (digits, symbols, acronyms, abbreviations,
Roman numerals) would break that match, so such sentences are dropped, not repaired.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# Unicode punctuation folded to ASCII before anything else.
_FOLD = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u2032": "'",
        "`": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u00ab": '"',
        "\u00bb": '"',
        "\u2010": "-",
        "\u2011": "-",
        "\u2012": "-",
        "\u2013": "-",
        "\u2014": "-",
        "\u2015": "-",
        "\u2026": ".",
        "\u00a0": " ",
        "_": " ",  # Project Gutenberg's _italics_
    }
)
# Characters a sentence may contain after folding; anything else (digits, $, %, &, /, ...)
# is something a TTS engine would read out in its own way, so the sentence is dropped.
_ALLOWED = re.compile(r"[A-Za-z\s.,;:!?'\"()\-]*")
# Titles expanded the way LibriSpeech writes them.
_TITLES = {"mr": "mister", "mrs": "missus", "dr": "doctor"}
_TITLE_RE = re.compile(r"\b(Mr|Mrs|Dr|MR|MRS|DR)\.?(?=\s)")
# Abbreviations a TTS engine expands (or spells) on its own: drop sentences with them when
# written with a full stop ("Col."), and the unambiguous ones in any form.
_ABBREVIATIONS = frozenset(
    "etc viz vs ie eg st co inc ltd jr sr esq nos vol ch pp ft lb lbs oz gen col capt lt "
    "sgt rev hon messrs mme mlle ms prof gov sen rep dept approx ca cf al aka ok tv".split()
)
_ALWAYS_ABBREVIATIONS = frozenset("etc viz vs ok tv aka approx".split())
_ABBREV_DOT_RE = re.compile(r"\b([A-Za-z]+)\.")
# A lone capital letter with a full stop is an initial ("J. Smith"), which TTS spells.
_INITIAL_RE = re.compile(r"(?:^|[\s(\"'])([B-HJ-Z])\.")
# Roman numerals of two or more letters as whole words ("Henry VIII", "chapter iv").
_ROMAN_RE = re.compile(
    r"^(?=[MDCLXVI]{2,}$)M{0,3}(CM|CD|D?C{0,3})(XC|XL|L?X{0,3})(IX|IV|V?I{0,3})$"
)
_WORD_RE = re.compile(r"[a-z]+(?:'[a-z]+)*")
# Tokens of the spoken text: words, or punctuation that is kept for prosody.
_SPOKEN_RE = re.compile(r"[a-z]+(?:'[a-z]+)*|[.,;:!?]")
_VOWEL_RE = re.compile(r"[aeiouy]")
# Interjections without vowels that TTS engines spell letter by letter ("hmm", "sh").
_ALLOWED_VOWELLESS = frozenset()
# Sentence boundary: terminal punctuation, optional closing quotes/brackets, then space.
_SENTENCE_END_RE = re.compile(r"(?<=[.!?])[\"')]*\s+(?=[\"'(]*[A-Z])")


@dataclass(frozen=True)
class Sentence:
    """One normalized sentence.

    ``words`` is the transcript (``"HELLO WORLD"``); ``spoken`` is what the TTS engine
    reads (``"hello, world."``): the same words in lower case with prosodic punctuation.
    """

    words: str
    spoken: str

    @property
    def num_words(self) -> int:
        return self.words.count(" ") + 1


def fold(text: str) -> str:
    """Fold quotes, dashes and accented letters to ASCII (``café`` -> ``cafe``)."""
    text = unicodedata.normalize("NFKD", text.translate(_FOLD))
    return "".join(c for c in text if not unicodedata.combining(c))


def _is_acronym(token: str) -> bool:
    letters = token.replace("'", "")
    # "I", "A" and "O" are words; "I'M"/"I'LL" are shouted words, not acronyms.
    return len(letters) >= 2 and letters.isupper() and not token.startswith("I'")


def normalize_sentence(raw: str, min_words: int = 1, max_words: int = 1000) -> Sentence | None:
    """Normalize one sentence, or return ``None`` when it cannot be spoken exactly as written.

    Dropped: digits, symbols, acronyms (``NASA``), initials (``J.``), abbreviations
    (``etc.``), Roman numerals, vowel-less tokens TTS would spell, and sentences outside
    ``min_words..max_words``. ``Mr``/``Mrs``/``Dr`` become ``MISTER``/``MISSUS``/``DOCTOR``,
    hyphens become spaces (``to-morrow`` -> ``TO MORROW``), as in LibriSpeech.
    """
    text = " ".join(fold(raw).split())
    if not text or not _ALLOWED.fullmatch(text):
        return None
    text = _TITLE_RE.sub(lambda m: _TITLES[m.group(1).lower()], text)
    for match in _ABBREV_DOT_RE.finditer(text):
        if match.group(1).lower() in _ABBREVIATIONS:
            return None
    if _INITIAL_RE.search(text):
        return None
    for token in re.findall(r"[A-Za-z]+(?:'[A-Za-z]+)*", text):
        if _is_acronym(token) or _ROMAN_RE.match(token):
            return None
        if token.lower() in _ALWAYS_ABBREVIATIONS:
            return None
    text = text.replace("-", " ").replace("(", ", ").replace(")", ", ")
    spoken_tokens = _SPOKEN_RE.findall(text.lower())
    words = [t for t in spoken_tokens if t[0].isalpha()]
    if not (min_words <= len(words) <= max_words):
        return None
    if any(not _VOWEL_RE.search(w) and w not in _ALLOWED_VOWELLESS for w in words):
        return None
    return Sentence(words=" ".join(words).upper(), spoken=_join_spoken(spoken_tokens))


def _join_spoken(tokens: list[str]) -> str:
    """Join words and punctuation: no space before punctuation, one punctuation mark in a row,
    and a full stop at the end so every sentence closes with a falling intonation."""
    out: list[str] = []
    for token in tokens:
        if token[0].isalpha():
            out.append(token)
        elif out and out[-1][-1].isalpha():  # at most one mark after a word
            out[-1] += token
    if out and out[-1][-1] in ",;:":
        out[-1] = out[-1][:-1]
    if out and out[-1][-1].isalpha():
        out[-1] += "."
    return " ".join(out)


def normalize_transcript(raw: str) -> str:
    """Normalize a free-form transcript for import: fold, upper-case, drop punctuation.

    Unlike :func:`normalize_sentence` nothing is rejected here; digits and symbols are kept,
    so that the vocabulary check that follows reports them.
    """
    text = fold(raw).upper().replace("-", " ")
    text = re.sub(r"[.,;:!?\"()\[\]]", " ", text)
    tokens = [t.strip("'") for t in text.split()]
    return " ".join(t for t in tokens if t)


def split_sentences(paragraph: str) -> list[str]:
    """Split a paragraph into sentences at ``.``/``!``/``?`` followed by a capital letter.

    Titles (``Mr.``) do not end a sentence.
    """
    text = " ".join(paragraph.split())
    text = re.sub(r"\b(Mr|Mrs|Dr|St|Messrs)\.", r"\1<DOT>", text)
    return [s.replace("<DOT>", ".").strip() for s in _SENTENCE_END_RE.split(text) if s.strip()]

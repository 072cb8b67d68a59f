"""Hotwords: words the beam search is told to prefer (names, jargon), as pyctcdecode's
``hotwords`` do.

Each occurrence of a hotword in a hypothesis adds its weight to the score, in the natural-log
units of ``log P_ctc``, and not scaled by the LM weight (pyctcdecode adds it after alpha
too). pyctcdecode's default weight, 10, is kept: enough to win over a likelier word that
sounds much the same, not enough to put the hotword where the audio says something else. A
negative weight makes a word rarer.
"""

from __future__ import annotations

from collections.abc import Iterable

from wav2vec2.errors import Wav2Vec2Error
from wav2vec2.vocab import Vocabulary

DEFAULT_WEIGHT = 10.0  # pyctcdecode's DEFAULT_HOTWORD_WEIGHT

Hotwords = tuple[tuple[str, float], ...]  # (word, bonus per occurrence)


def parse_hotword(spec: str) -> tuple[str, float]:
    """``WORD`` or ``WORD:WEIGHT`` -> (word, weight)."""
    word, sep, weight = spec.rpartition(":")
    if not sep:
        word, weight = spec, str(DEFAULT_WEIGHT)
    if not word or any(c.isspace() for c in word):
        raise Wav2Vec2Error(f"--hotword {spec!r}: expected one word, as WORD or WORD:WEIGHT")
    try:
        value = float(weight)
    except ValueError:
        raise Wav2Vec2Error(f"--hotword {spec!r}: the weight must be a number") from None
    return word, value


def parse_hotwords(specs: Iterable[str]) -> Hotwords:
    """Each ``--hotword`` given; a word may be named once."""
    parsed = [parse_hotword(s) for s in specs]
    words = [w for w, _ in parsed]
    twice = sorted({w for w in words if words.count(w) > 1})
    if twice:
        raise Wav2Vec2Error(f"--hotword {twice[0]} is given more than once")
    return tuple(parsed)


def check_spellable(hotwords: Hotwords, vocab: Vocabulary) -> None:
    """A hotword must be made of letters the model emits: one it cannot spell could never be
    boosted, and silently doing nothing would look like a weight too small."""
    letters = set(vocab.tokens) - vocab.specials - {vocab.word_delimiter}
    for word, _ in hotwords:
        missing = sorted({c for c in word if c not in letters})
        if missing:
            hint = ""
            if all(c in letters for c in word.upper()):
                hint = f" (the model spells in upper case: try {word.upper()!r})"
            raise Wav2Vec2Error(
                f"hotword {word!r} has letters the model cannot emit: {''.join(missing)!r}{hint}"
            )

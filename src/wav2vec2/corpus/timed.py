"""Speech whose word times are known exactly, and the boundary error of times against them.

Each word is spoken on its own by a TTS voice and trimmed to where its sound is (a 5 ms RMS
envelope above ``TRIM_DB`` below the word's loudest window). The trimmed words are joined
with silences of seeded random length, so every word's start and end in the joined audio is
known to the sample. This measures word timestamps and forced alignment against a truth
that no model produced.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import jiwer
import numpy as np

from wav2vec2.audio import SAMPLE_RATE
from wav2vec2.corpus.synth import Request, synthesize
from wav2vec2.corpus.voices import Voice

TRIM_DB = 35.0  # a word's sound: windows within this many dB of its loudest
WINDOW = SAMPLE_RATE // 200  # 5 ms


@dataclass(frozen=True)
class TimedWord:
    """A word and where it is: start and end in seconds."""

    text: str
    start: float
    end: float


@dataclass(frozen=True)
class TimedUtterance:
    audio: np.ndarray  # 16 kHz mono float32
    words: tuple[TimedWord, ...]

    @property
    def text(self) -> str:
        return " ".join(w.text for w in self.words)


def sound_span(audio: np.ndarray, trim_db: float = TRIM_DB) -> tuple[int, int]:
    """First and one-past-last sample of the windows within ``trim_db`` of the loudest."""
    n = len(audio) // WINDOW
    if n == 0:
        raise ValueError("audio shorter than one 5 ms window")
    rms = np.sqrt(np.mean(audio[: n * WINDOW].reshape(n, WINDOW) ** 2, axis=1))
    loud = np.flatnonzero(rms >= rms.max() * 10 ** (-trim_db / 20))
    return int(loud[0] * WINDOW), int((loud[-1] + 1) * WINDOW)


def timed_utterance(
    voice: Voice,
    words: Sequence[str],
    rng: np.random.Generator,
    gap: tuple[float, float] = (0.15, 0.6),
    edge: float = 0.3,
) -> TimedUtterance:
    """``words`` spoken one by one by ``voice``, joined by silences drawn uniformly from
    ``gap`` seconds, with ``edge`` seconds of silence before the first and after the last."""
    waves = synthesize(voice, [Request(w.lower(), voice.rate, voice.pitch) for w in words])
    pieces, timed = [np.zeros(round(edge * SAMPLE_RATE), np.float32)], []
    offset = len(pieces[0])
    for i, (word, wave) in enumerate(zip(words, waves, strict=True)):
        a, b = sound_span(wave)
        sound = wave[a:b].astype(np.float32)
        timed.append(TimedWord(word, offset / SAMPLE_RATE, (offset + len(sound)) / SAMPLE_RATE))
        pause = edge if i == len(words) - 1 else rng.uniform(*gap)
        pieces += [sound, np.zeros(round(pause * SAMPLE_RATE), np.float32)]
        offset += len(sound) + len(pieces[-1])
    audio = np.concatenate(pieces)
    return TimedUtterance(audio / max(1e-9, float(np.abs(audio).max())) * 0.9, tuple(timed))


def boundary_errors(
    truth: Sequence[TimedWord], got: Sequence[tuple[str, float, float]]
) -> tuple[list[float], int]:
    """Start and end errors (seconds, absolute) of the words of ``got`` that match ``truth``.

    ``got`` is (word, start, end) in order, as a decoder or an aligner gives them. Words are
    paired by a minimum-edit alignment of the two word sequences; only pairs with the same
    spelling are scored (a misrecognized word has no true boundary). Returns the errors
    (two per scored word) and the number of words scored.
    """
    ref = [w.text for w in truth]
    hyp = [g[0] for g in got]
    errors, scored = [], 0
    for i, j in _matches(ref, hyp):
        errors += [abs(got[j][1] - truth[i].start), abs(got[j][2] - truth[i].end)]
        scored += 1
    return errors, scored


def _matches(ref: Sequence[str], hyp: Sequence[str]) -> list[tuple[int, int]]:
    """Index pairs of equal words on jiwer's minimum-edit alignment of ``ref`` and ``hyp``."""
    if not ref or not hyp:
        return []
    (chunks,) = jiwer.process_words(" ".join(ref), " ".join(hyp)).alignments
    return [(c.ref_start_idx + k, c.hyp_start_idx + k) for c in chunks if c.type == "equal"
            for k in range(c.ref_end_idx - c.ref_start_idx)]  # fmt: skip

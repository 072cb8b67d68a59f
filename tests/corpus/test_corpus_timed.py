"""Speech with known word times: the truth that timestamps and alignment are measured with."""

import shutil

import numpy as np
import pytest

from wav2vec2.audio import SAMPLE_RATE
from wav2vec2.corpus.timed import TimedWord, boundary_errors, sound_span, timed_utterance
from wav2vec2.corpus.voices import voices_by_split


def test_the_sound_span_is_where_the_sound_is():
    audio = np.zeros(SAMPLE_RATE, np.float32)
    audio[4000:12000] = np.sin(np.arange(8000) * 0.3)
    assert sound_span(audio) == (4000, 12000)
    audio[2000:2080] = 1e-3  # 60 dB below: room noise, not the word
    assert sound_span(audio) == (4000, 12000)


@pytest.mark.skipif(not shutil.which("espeak-ng"), reason="needs espeak-ng")
def test_words_sit_exactly_where_their_times_say():
    voice = voices_by_split()["test"][1]  # an espeak-ng voice: fast
    words = ["THE", "QUICK", "BROWN", "FOX"]
    utt = timed_utterance(voice, words, np.random.default_rng(0))
    assert [w.text for w in utt.words] == words
    assert utt.text == "THE QUICK BROWN FOX"
    edges = [0.0] + [t for w in utt.words for t in (w.start, w.end)] + [len(utt.audio) / 16000]
    assert edges == sorted(edges)
    for (a, b), silent in zip(zip(edges, edges[1:]), [True, False] * 5):
        piece = utt.audio[round(a * SAMPLE_RATE) : round(b * SAMPLE_RATE)]
        if silent:
            assert not np.any(piece)  # the gaps are digital silence
        else:  # each word starts and ends inside its sound: a loud 5 ms window at both edges
            level = np.abs(piece).max()
            assert level > 0.05
            assert np.abs(piece[:80]).max() > level * 10 ** (-35 / 20)
            assert np.abs(piece[-80:]).max() > level * 10 ** (-35 / 20)
    gaps = [b.start - a.end for a, b in zip(utt.words, utt.words[1:])]
    assert all(0.15 <= g <= 0.6 for g in gaps)
    again = timed_utterance(voice, words, np.random.default_rng(0))
    assert again.words == utt.words  # seeded: the same truth every run


def test_boundary_errors_score_only_recognized_words():
    truth = [TimedWord("A", 0.3, 0.5), TimedWord("B", 0.8, 1.0), TimedWord("C", 1.2, 1.5)]
    got = [("A", 0.32, 0.46), ("X", 0.8, 1.0), ("Y", 1.05, 1.1), ("C", 1.2, 1.55)]
    errors, scored = boundary_errors(truth, got)
    assert scored == 2
    assert errors == pytest.approx([0.02, 0.04, 0.0, 0.05])
    assert boundary_errors(truth, []) == ([], 0)

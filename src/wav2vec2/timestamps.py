"""Word and character times from CTC frames, for greedy and beam decoding alike.

A decoded hypothesis carries, for each emitted label, its run of frames in the best path
(``Hypothesis.frames`` / ``.ends``). A label's time is its run: from the start of its first
frame to the end of its last (frames are ``stride / sample_rate`` seconds apart: 20 ms).
Its confidence is the mean posterior of that label over its run, and a word's is the mean
over its letters. Words are the letters between word delimiters.

CTC peaks are narrow (a letter's run is often one frame, the blanks around it belong to
no label), so a word's start is its first letter's peak, and its end the middle of the blank
run between its last letter and the delimiter after it (``word_segments`` says why).
Forced alignment (:mod:`wav2vec2.alignment`) places boundaries by Viterbi instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from wav2vec2.decoding import Hypothesis
from wav2vec2.vocab import Vocabulary


@dataclass(frozen=True)
class Segment:
    """A word or a character: text, start and end in seconds, confidence in [0, 1]."""

    text: str
    start: float
    end: float
    confidence: float

    def to_dict(self, key: str = "word") -> dict:
        """``{key: text, start, end, confidence}``, times to the millisecond."""
        return {key: self.text, "start": round(self.start, 3), "end": round(self.end, 3),
                "confidence": round(self.confidence, 4)}  # fmt: skip


def char_segments(
    hyp: Hypothesis, vocab: Vocabulary, log_probs: Tensor, seconds_per_frame: float
) -> list[Segment]:
    """Every emitted label of ``hyp`` (word delimiters included) with its run's time and
    mean posterior. ``log_probs``: (frames, vocabulary) log-softmax of the emissions."""
    probs = log_probs.exp()
    out = []
    for token, start, end in zip(hyp.tokens, hyp.frames, hyp.ends, strict=True):
        confidence = float(probs[start:end, token].mean())
        out.append(Segment(vocab.tokens[token], start * seconds_per_frame,
                           end * seconds_per_frame, confidence))  # fmt: skip
    return out


def word_segments(chars: list[Segment], delimiter: str) -> list[Segment]:
    """Letters grouped into words at the delimiter; a word starts at its first letter's start,
    and its confidence is the mean of its letters'.

    Its end: CTC marks a letter with a narrow peak, and the frames after a word's last peak
    are blank until the word delimiter fires, so the sound ends somewhere in that blank run.
    The word ends in the middle of the run: the estimate whose worst error is smallest. On
    the known-boundary speech of benchmarks/timing_accuracy.py, aligned by the demo's model,
    the median end error was 94 ms with the last peak's end, 45 ms with the middle and 50 ms
    with the delimiter's start (docs/benchmarks.md). A word with no delimiter after it ends
    with its last letter.
    """
    words, current = [], []
    for seg in [*chars, None]:
        if seg is None or seg.text == delimiter:
            if current:
                text = "".join(c.text for c in current)
                confidence = sum(c.confidence for c in current) / len(current)
                end = current[-1].end
                if seg is not None and seg.start > end:
                    end = (end + seg.start) / 2
                words.append(Segment(text, current[0].start, end, confidence))
            current = []
        else:
            current.append(seg)
    return words

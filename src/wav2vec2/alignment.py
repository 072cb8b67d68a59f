"""CTC forced alignment: the most probable CTC path that spells a known transcript.

The CTC topology (Graves et al. 2006, as in torchaudio's ``forced_align``): a transcript of
L labels ``y_0 .. y_{L-1}`` becomes the state sequence ``blank, y_0, blank, y_1, ...,
y_{L-1}, blank`` (S = 2L + 1 states; state 2j+1 is label j, state 2j the blank before it).
A path gives every frame a state; from one frame to the next it stays, moves to the next
state, or skips one blank between two *different* labels (two equal adjacent labels need a
blank between them, or they would collapse into one). It starts in state 0 or 1 and ends
in state S-1 or S-2. Viterbi: ``score_t(s) = log p_t(label(s)) + max(score_{t-1}(s),
score_{t-1}(s-1), score_{t-1}(s-2) if the skip is allowed)``; on a tie the path stays,
then takes the nearer predecessor.

Bounded memory. The plain Viterbi keeps a backpointer per state per frame: T x S, for an
hour (180k frames) of a long text (S ~ 100k states) some 18 GB even as bytes. Here the
frames are cut into segments of k frames, and the search runs twice:

1. forward over all frames keeping only scores, and a copy of the score column just before
   each segment starts (a checkpoint);
2. segment by segment from the last: recompute its k frames from its checkpoint, now with
   backpointers (k x S bytes), and follow them back from the state the path is in at the
   segment's last frame (known from the segment after it) to its first.

A recomputed frame is the same floating-point operations on the same numbers as in pass 1,
so the path is bit for bit the plain Viterbi's; with k >= T there is one segment and this
*is* the plain Viterbi (one pass). Memory is ``4 * 2L * T / k`` bytes of checkpoints plus
``3L * k`` of backpointers; k = sqrt(8T / 3) makes them equal, 6L * sqrt(8T / 3) bytes in
all: about 220 MB for an hour of audio with L = 54k letters (~10k words). Time is two
forward passes instead of one.

Only states that a path can be in are computed: at frame t a path has emitted at most t+1
labels and must still fit the rest into the remaining frames (the window in :func:`_window`).

The search runs in NumPy: per frame it is a dozen element-wise operations on vectors of L
numbers, where NumPy's ~1 us per call beats torch's (~5 us, and torch's intra-op threads,
which cost more than they save at this size on a busy machine: measured 30x slower).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from wav2vec2.decoding import Hypothesis
from wav2vec2.errors import Wav2Vec2Error
from wav2vec2.timestamps import Segment, char_segments, word_segments
from wav2vec2.vocab import Vocabulary

PLAIN_BYTES = 64 * 2**20  # backpointers for every frame up to this size: one pass, no segments
NEG_INF = np.float32(-np.inf)


@dataclass(frozen=True)
class ForcedPath:
    """The best CTC path of a transcript through the emissions."""

    # (frames,) int64: each frame's state, 2j+1 = the transcript's label j, 2j = the blank
    # before it (2L: the blank after the last label); never decreasing
    states: Tensor
    log_prob: float  # log P(path | audio): the sum over frames of the path's log posteriors


@dataclass(frozen=True)
class Alignment:
    """A transcript placed in time by forced alignment."""

    source: str  # the audio file, or "<array N>"
    text: str  # the transcript as aligned: the model's spelling, single spaces
    duration: float  # seconds of audio
    log_prob: float  # of the best path (natural log): how well the text fits the audio
    words: tuple[Segment, ...]  # each word: start, end (seconds), mean posterior of its letters
    chars: tuple[Segment, ...]  # each letter likewise, word delimiters included


def min_frames(targets: Sequence[int]) -> int:
    """Frames the shortest CTC path of ``targets`` takes: one per label, and one blank
    between two equal adjacent labels."""
    return len(targets) + sum(a == b for a, b in zip(targets, targets[1:]))


def forced_align(
    log_probs: Tensor, targets: Sequence[int], blank: int, segment_frames: int | None = None
) -> ForcedPath:
    """The Viterbi path of ``targets`` (label ids, no blanks) through ``log_probs``
    ((frames, vocabulary) log posteriors), in segments of ``segment_frames`` frames (see the
    module doc; default: one segment if its backpointers fit :data:`PLAIN_BYTES`, else the
    size that needs the least memory). Raises Wav2Vec2Error when there are fewer frames than
    the path needs, or no path has a nonzero probability."""
    lp = log_probs.detach().float().cpu().numpy()
    tg = np.asarray(targets, dtype=np.intp)
    T, L = lp.shape[0], len(tg)
    need = min_frames(tg.tolist())
    if T < need:
        raise Wav2Vec2Error(
            f"the audio is too short for the text: {T} frames, the text needs at least "
            f"{need} (one per letter, and a blank between repeated letters)"
        )
    if L == 0:  # nothing to place: every frame is the blank
        states, labels = np.zeros(T, dtype=np.int64), np.full(T, blank)
    else:
        k = min(segment_frames or _segment_frames(T, L), T)
        states = _viterbi(_Lattice(lp, tg, blank), T, k)
        labels = np.where(states % 2 == 1, tg[(states - 1).clip(0) // 2], blank)
    log_prob = float(lp[np.arange(T), labels].astype(np.float64).sum())
    if not math.isfinite(log_prob):
        raise Wav2Vec2Error(
            "the text cannot be aligned: the model gives every path of it zero probability"
        )
    return ForcedPath(torch.from_numpy(states), log_prob)


def label_runs(path: ForcedPath, num_labels: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Each label's frames ``[start, end)`` in the path (its state's run: states never
    decrease, so each is found by bisection)."""
    states = path.states.numpy()
    odd = 2 * np.arange(num_labels) + 1
    starts = np.searchsorted(states, odd, side="left")
    ends = np.searchsorted(states, odd, side="right")
    return tuple(starts.tolist()), tuple(ends.tolist())


def label_ids(text: str, vocab: Vocabulary) -> list[int]:
    """``text`` (in the vocabulary's spelling: :meth:`Vocabulary.normalize`) as label ids,
    words joined by the word delimiter; one Wav2Vec2Error naming any character outside the
    vocabulary, or saying that the text is empty."""
    try:
        targets = vocab.encode(text)
    except ValueError as exc:
        raise Wav2Vec2Error(
            f"the text has {exc}: remove or spell them out (spaces between words "
            f"become {vocab.word_delimiter!r})"
        ) from None
    if not targets:
        raise Wav2Vec2Error("nothing to align: the text is empty")
    return targets


def align(
    log_probs: Tensor,
    targets: Sequence[int],
    vocab: Vocabulary,
    seconds_per_frame: float,
    segment_frames: int | None = None,
) -> tuple[float, tuple[Segment, ...], tuple[Segment, ...]]:
    """(log_prob, words, chars) of ``targets`` (:func:`label_ids`) in ``log_probs``
    ((frames, vocabulary) log-softmax). Letters get times and confidences as in transcripts
    (:mod:`wav2vec2.timestamps`), from their runs in the forced path."""
    path = forced_align(log_probs, targets, vocab.blank, segment_frames)
    starts, ends = label_runs(path, len(targets))
    hyp = Hypothesis(vocab.decode(list(targets)), tuple(targets), starts, ends)
    chars = char_segments(hyp, vocab, log_probs, seconds_per_frame)
    return path.log_prob, tuple(word_segments(chars, vocab.word_delimiter)), tuple(chars)


def _segment_frames(T: int, L: int) -> int:
    if T * (3 * L + 1) <= PLAIN_BYTES:
        return T
    return max(1, math.ceil(math.sqrt(8 * T / 3)))  # checkpoints and backpointers equal


def _window(t: int, T: int, L: int) -> tuple[int, int]:
    """Labels ``j`` whose states a path can be in at frame t: ``lo <= j <= hi``. It has
    emitted at most t+1 labels (j <= t), and labels j+1 .. L-1 need a frame each after t
    (j >= L - T + t). The blank before label j obeys the same bounds (one looser)."""
    return max(0, L - T + t), min(L, t)


class _Lattice:
    """The CTC lattice of one transcript, stored in two parts: the blanks ``b`` (L+1 of
    them; ``b[j]`` is the blank before label j) and the labels ``l`` (L, kept at index j+1,
    so that ``l[0]``, always -inf, is the missing label before the first)."""

    def __init__(self, lp: np.ndarray, targets: np.ndarray, blank: int):
        self.lp, self.tg, self.blank = lp, targets, blank
        L = len(targets)
        # label j may follow label j-1 directly only when they differ
        self.skip = np.zeros(L, dtype=np.float32)
        self.skip[1:][targets[1:] == targets[:-1]] = NEG_INF
        self._m = np.empty(L, dtype=np.float32)  # scratch, reused every frame
        self._two = np.empty(L, dtype=np.float32)
        self._emit = np.empty(L, dtype=np.float32)

    def empty(self) -> tuple[np.ndarray, np.ndarray]:
        L = len(self.tg)
        return np.full(L + 1, NEG_INF), np.full(L + 1, NEG_INF)

    def first(self) -> tuple[np.ndarray, np.ndarray]:
        """Frame 0: the path starts in the first blank or the first label."""
        b, l = self.empty()
        b[0], l[1] = self.lp[0, self.blank], self.lp[0, self.tg[0]]
        return b, l

    def step(self, t: int, prev, cur, choice=None) -> None:
        """Scores of frame t into ``cur`` (b, l) from frame t-1's ``prev``, within the
        window; with ``choice`` (three bool rows), also where each state came from:
        ``from_blank`` / ``from_label`` for a label (both false: it stayed), ``from_label``
        for a blank. Entries outside the window are never written nor read: a state a
        path cannot be in at t-1 is either -inf (never reached) or below every window
        that reads it."""
        (pb, pl), (cb, cl) = prev, cur
        T, L = self.lp.shape[0], len(self.tg)
        lo, hi = _window(t, T, L)
        a, z, n = lo, min(hi, L - 1) + 1, min(hi, L - 1) + 1 - lo  # labels a .. z-1
        stay, from_blank = pl[a + 1 : z + 1], pb[a:z]
        m, two, emit = self._m[:n], self._two[:n], self._emit[:n]
        np.add(pl[a:z], self.skip[a:z], out=two)  # from label j-1
        if choice is not None:
            np.greater(from_blank, stay, out=choice[0][a:z])
        np.maximum(stay, from_blank, out=m)
        if choice is not None:
            np.greater(two, m, out=choice[1][a:z])
        np.maximum(m, two, out=m)
        self.lp[t].take(self.tg[a:z], out=emit, mode="clip")  # indices are valid: no check
        np.add(m, emit, out=cl[a + 1 : z + 1])
        # blanks lo .. hi: stay, or come from the label before
        if choice is not None:
            np.greater(pl[lo : hi + 1], pb[lo : hi + 1], out=choice[2][lo : hi + 1])
        np.maximum(pb[lo : hi + 1], pl[lo : hi + 1], out=cb[lo : hi + 1])
        cb[lo : hi + 1] += self.lp[t, self.blank]


def _viterbi(lattice: _Lattice, T: int, k: int) -> np.ndarray:
    """The best path's state per frame, in segments of k frames (module doc)."""
    L = len(lattice.tg)
    starts = list(range(0, T, k))
    # pass 1: scores only, keeping the column before each segment; the last segment is
    # computed in pass 2 anyway, so pass 1 stops before it (one segment: no pass 1)
    checkpoints: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    prev, cur = lattice.first(), lattice.empty()
    for t in range(1, starts[-1]):
        if t % k == 0:
            checkpoints[t] = (prev[0].copy(), prev[1].copy())
        lattice.step(t, prev, cur)
        prev, cur = cur, prev
    if starts[-1] > 0:
        checkpoints[starts[-1]] = (prev[0].copy(), prev[1].copy())
    # pass 2: last segment first, backpointers for its frames only
    states = np.empty(T, dtype=np.int64)
    choice = (np.empty((k, L), bool), np.empty((k, L), bool), np.empty((k, L + 1), bool))
    state = -1  # the path's state at the current segment's last frame (unknown: end)
    for start in reversed(starts):
        end = min(start + k, T)
        prev = lattice.first() if start == 0 else checkpoints.pop(start)
        cur = lattice.empty()
        for t in range(max(start, 1), end):
            lattice.step(t, prev, cur, [c[t - start] for c in choice])
            prev, cur = cur, prev
        if state < 0:  # the last frame: end in the final blank, or the last label if better
            b, l = prev
            state = 2 * L if b[L] >= l[L] else 2 * L - 1
        for t in range(end - 1, start - 1, -1):
            states[t] = state
            if t > 0:
                state = _back(state, [c[t - start] for c in choice])
    return states


def _back(state: int, choice) -> int:
    """The state one frame earlier, from the backpointers of the state's frame."""
    from_blank, from_label, blank_from_label = choice
    j = state // 2
    if state % 2 == 0:  # the blank before label j
        return state - 1 if blank_from_label[j] else state
    if from_label[j]:
        return state - 2
    return state - 1 if from_blank[j] else state

"""The grid of (lm_weight, word_score) points that ``wav2vec2 lm tune`` tries on a dev split
(:func:`wav2vec2.evaluation.tune_beam`: the model runs once, only the decoding repeats; the
best point goes to the LM's tuned.json, :mod:`wav2vec2.tuned_weights`). The paper tunes the
two weights of its 4-gram on dev too (sec. 4.4).
"""

from __future__ import annotations

import itertools

from wav2vec2.errors import Wav2Vec2Error

# The default grid: 6 x 5 = 30 decodings of dev. fairseq's wav2vec 2.0 recipes search
# lm_weight in [0, 5] and word_score in [-5, 5]; a letter model with a 4-gram sits in the
# middle of that (the demo picks 0.5..2, docs/finetuning.md), and a heavier LM wants a larger
# word bonus to keep it from dropping words.
LM_WEIGHTS = (0.5, 1.0, 1.5, 2.0, 2.5, 3.0)
WORD_SCORES = (-1.0, 0.0, 1.0, 2.0, 3.0)

Grid = list[tuple[float, float]]  # (lm_weight, word_score) points


def _numbers(text: str, flag: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise Wav2Vec2Error(f"{flag} {text!r}: expected numbers separated by commas") from None
    if not values:
        raise Wav2Vec2Error(f"{flag} {text!r}: no values")
    return values


def parse_grid(text: str) -> Grid:
    """``W:S,W:S,...`` (``--grid``) -> (lm_weight, word_score) points."""
    points = []
    for item in text.split(","):
        weight, sep, score = item.partition(":")
        if not sep:
            raise Wav2Vec2Error(
                f"--grid {text!r}: expected LM_WEIGHT:WORD_SCORE points separated by commas "
                "(e.g. 1:0,2:1)"
            )
        (w,), (s,) = _numbers(weight, "--grid"), _numbers(score, "--grid")
        points.append((w, s))
    return points


def make_grid(
    grid: str | None = None, lm_weights: str | None = None, word_scores: str | None = None
) -> Grid:
    """The points to try: ``grid`` as given, or every pair of the two lists (each defaults
    to ``LM_WEIGHTS`` / ``WORD_SCORES``)."""
    if grid is not None:
        if lm_weights is not None or word_scores is not None:
            raise Wav2Vec2Error(
                "--grid lists the points itself: it cannot go with --lm-weights or --word-scores"
            )
        return parse_grid(grid)
    weights = _numbers(lm_weights, "--lm-weights") if lm_weights is not None else LM_WEIGHTS
    scores = _numbers(word_scores, "--word-scores") if word_scores is not None else WORD_SCORES
    return list(itertools.product(weights, scores))

"""Word and character error rates, computed with jiwer.

Counts (errors and reference lengths) rather than rates are returned so they can be summed
over batches and ranks before dividing. :func:`bootstrap_rates` adds confidence intervals by
resampling utterances.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import jiwer
import numpy as np


def error_counts(references: Sequence[str], hypotheses: Sequence[str]) -> dict[str, float]:
    """Edit-distance counts over utterances with a non-empty reference."""
    pairs = [(r, h) for r, h in zip(references, hypotheses, strict=True) if r.strip()]
    if not pairs:
        return {"word_errors": 0.0, "words": 0.0, "char_errors": 0.0, "chars": 0.0}
    refs, hyps = [p[0] for p in pairs], [p[1] for p in pairs]
    w = jiwer.process_words(refs, hyps)
    c = jiwer.process_characters(refs, hyps)
    return {
        "word_errors": float(w.substitutions + w.deletions + w.insertions),
        "words": float(w.substitutions + w.deletions + w.hits),
        "char_errors": float(c.substitutions + c.deletions + c.insertions),
        "chars": float(c.substitutions + c.deletions + c.hits),
    }


def rates(counts: dict[str, float]) -> dict[str, float]:
    return {
        "wer": counts["word_errors"] / max(counts["words"], 1.0),
        "cer": counts["char_errors"] / max(counts["chars"], 1.0),
    }


@dataclass(frozen=True)
class Interval:
    """A rate and its bootstrap confidence interval (fractions, not percent)."""

    value: float  # the rate over all utterances
    low: float
    high: float


@dataclass(frozen=True)
class BootstrapRates:
    wer: Interval
    cer: Interval
    utterances: int
    resamples: int
    level: float  # e.g. 0.95


def utterance_counts(references: Sequence[str], hypotheses: Sequence[str]) -> np.ndarray:
    """(N, 4) per-utterance ``word_errors, words, char_errors, chars`` (the columns of
    :func:`error_counts`), for utterances with a non-empty reference."""
    rows = [
        [c["word_errors"], c["words"], c["char_errors"], c["chars"]]
        for r, h in zip(references, hypotheses, strict=True)
        if r.strip()
        for c in (error_counts([r], [h]),)
    ]
    return np.array(rows, dtype=np.float64).reshape(-1, 4)


def bootstrap_rates(
    references: Sequence[str],
    hypotheses: Sequence[str],
    resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> BootstrapRates:
    """WER and CER with percentile bootstrap intervals over utterances (Bisani and Ney 2004):
    draw N utterances with replacement ``resamples`` times (numpy's seeded Generator), and
    take each draw's rate as total errors / total reference length, as the rate itself is."""
    counts = utterance_counts(references, hypotheses)
    if len(counts) == 0:
        raise ValueError("no utterance with a non-empty reference to score")
    if resamples < 1 or not 0 < level < 1:
        raise ValueError("resamples must be >= 1 and level in (0, 1)")
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(counts), size=(resamples, len(counts)))
    sums = counts[draws].sum(axis=1)  # (resamples, 4)
    tails = (100 * (1 - level) / 2, 100 * (1 + level) / 2)
    total = counts.sum(axis=0)

    def interval(errors: int, length: int) -> Interval:
        low, high = np.percentile(sums[:, errors] / np.maximum(sums[:, length], 1.0), tails)
        rate = float(total[errors] / max(total[length], 1.0))
        return Interval(rate, float(low), float(high))

    return BootstrapRates(interval(0, 1), interval(2, 3), len(counts), resamples, level)

"""Word and character error rates, computed with jiwer.

Counts (errors and reference lengths) rather than rates are returned so they can be summed
over batches and ranks before dividing.
"""

from __future__ import annotations

from collections.abc import Sequence

import jiwer


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

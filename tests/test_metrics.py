"""Error rates with bootstrap confidence intervals, and a run's wall-clock from its log."""

import numpy as np
import pytest

from wav2vec2.metrics import bootstrap_rates, error_counts, rates, utterance_counts
from wav2vec2.training.metrics import training_seconds

REFS = ["the cat sat", "on the mat", "a dog", "ran far away", "it was late", "we slept"]
HYPS = ["the cat sat", "on a mat", "a fog", "ran away", "it was late", "we slept in"]


def test_utterance_counts_add_up_to_the_corpus_counts():
    counts = utterance_counts(REFS + [" "], HYPS + ["ignored"])  # empty references drop out
    assert counts.shape == (len(REFS), 4)
    total = error_counts(REFS, HYPS)
    assert counts.sum(axis=0).tolist() == [
        total["word_errors"], total["words"], total["char_errors"], total["chars"]
    ]  # fmt: skip


def test_bootstrap_interval_brackets_the_rate_is_seeded_and_narrows_with_data():
    ci = bootstrap_rates(REFS, HYPS, resamples=500, seed=1)
    exact = rates(error_counts(REFS, HYPS))
    assert ci.wer.value == pytest.approx(exact["wer"]) and ci.cer.value == pytest.approx(
        exact["cer"]
    )
    for iv in (ci.wer, ci.cer):
        assert 0.0 <= iv.low < iv.value < iv.high <= 1.5
    assert bootstrap_rates(REFS, HYPS, resamples=500, seed=1) == ci  # seeded: reproducible
    many = bootstrap_rates(REFS * 25, HYPS * 25, resamples=500, seed=1)
    assert many.wer.value == pytest.approx(ci.wer.value)
    assert many.wer.high - many.wer.low < 0.5 * (ci.wer.high - ci.wer.low)  # ~1/sqrt(25)
    perfect = bootstrap_rates(REFS, REFS, resamples=50)
    assert (perfect.wer.low, perfect.wer.high) == (0.0, 0.0)
    with pytest.raises(ValueError, match="non-empty reference"):
        bootstrap_rates([""], ["x"])


def test_training_seconds_sums_the_logged_windows():
    log = [
        {"split": "train", "update": 100, "audio_seconds": 12.0, "audio_seconds_per_second": 24.0},
        {"split": "valid", "update": 100, "loss": 1.0},
        {"split": "warning", "update": 100, "message": "x"},
        {"split": "train", "update": 200, "audio_seconds": 12.0, "audio_seconds_per_second": 12.0},
        {"split": "train", "update": 250, "audio_seconds": 10.0, "audio_seconds_per_second": 20.0},
    ]
    # 100 x 12 / 24 + 100 x 12 / 12 + 50 x 10 / 20
    assert training_seconds(log) == pytest.approx(50.0 + 100.0 + 25.0)
    assert training_seconds([]) == 0.0
    assert np.isfinite(training_seconds([{"split": "train", "update": 5}]))

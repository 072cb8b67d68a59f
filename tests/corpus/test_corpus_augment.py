"""Seeded augmentation: exact SNR, speed, reverberation, determinism."""

from __future__ import annotations

import random

import numpy as np
import pytest

from wav2vec2.corpus import augment as aug


def _tone(seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(16000 * seconds)) / 16000
    return (0.5 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


@pytest.mark.parametrize("kind", aug.NOISE_KINDS)
def test_noise_at_exact_snr(kind: str) -> None:
    x = _tone()
    y = aug.add_noise(x, 10.0, kind, np.random.default_rng(0))
    noise = y.astype(np.float64) - x
    snr = 10 * np.log10(np.mean(x.astype(np.float64) ** 2) / np.mean(noise**2))
    assert snr == pytest.approx(10.0, abs=0.01)


def test_speed_perturbation_changes_length() -> None:
    x = _tone(2.0)
    assert len(aug.speed_perturb(x, 1.1)) == pytest.approx(len(x) / 1.1, abs=2)
    assert len(aug.speed_perturb(x, 0.9)) == pytest.approx(len(x) / 0.9, abs=2)
    assert aug.speed_perturb(x, 1.0) is x


def test_reverb_keeps_length_and_decays() -> None:
    h = aug.room_response(0.5, 16000, np.random.default_rng(0))
    assert h[0] == 1.0 and len(h) == 8000
    tail = np.abs(h[1:])
    assert tail[-800:].max() < tail[:800].max() / 100  # decayed by > 40 dB
    x = _tone()
    assert len(aug.reverberate(x, 0.5, np.random.default_rng(0))) == len(x)


def test_specs_are_seeded_and_follow_probabilities() -> None:
    config = aug.AugmentConfig(noise_prob=0.5, speed_prob=0.0, reverb_prob=1.0)
    a = [aug.draw_spec(config, random.Random(3)) for _ in range(2)]
    assert a[0] == a[1]
    rng = random.Random(0)
    specs = [aug.draw_spec(config, rng) for _ in range(400)]
    assert all(s.speed == 1.0 and s.rt60_s > 0 for s in specs)
    noisy = sum(s.snr_db is not None for s in specs)
    assert 150 < noisy < 250
    assert all(5.0 <= s.snr_db <= 30.0 for s in specs if s.snr_db is not None)


def test_apply_is_deterministic_and_identity_is_a_no_op() -> None:
    x = _tone()
    spec = aug.AugmentSpec(speed=1.1, rt60_s=0.3, snr_db=15.0, noise="pink", seed=7)
    assert np.array_equal(aug.apply(x, spec), aug.apply(x, spec))
    assert aug.apply(x, aug.AugmentSpec()) is x


def test_config_validation() -> None:
    with pytest.raises(ValueError):
        aug.AugmentConfig(noise_prob=1.5)
    with pytest.raises(ValueError):
        aug.AugmentConfig(snr_db=(20.0, 5.0))
    assert not aug.AugmentConfig().enabled and aug.DEFAULT_AUGMENT.enabled

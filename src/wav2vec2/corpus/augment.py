"""Seeded audio augmentation: speed perturbation, reverberation, additive noise at an SNR.

Everything is numpy (and soxr for resampling), so the result is the same on every machine
for the same :class:`AugmentSpec`. Specs are drawn when the corpus is planned, from the
corpus seed, so an utterance's augmentation does not depend on which worker makes it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from wav2vec2.audio import SAMPLE_RATE, speed_perturb

NOISE_KINDS = ("white", "pink", "brown")


@dataclass(frozen=True)
class AugmentConfig:
    """How often each augmentation is applied to training utterances (dev/test stay clean)."""

    noise_prob: float = 0.0  # share of utterances that get additive noise
    snr_db: tuple[float, float] = (5.0, 30.0)  # noise level, uniform in this range (dB)
    speed_prob: float = 0.0  # share that get speed perturbation
    speed_factors: tuple[float, ...] = (0.9, 1.1)  # as Kaldi's 3-way recipe, 1.0 aside
    reverb_prob: float = 0.0  # share that get reverberation
    rt60_s: tuple[float, float] = (0.2, 0.8)  # reverberation time, uniform in this range

    @property
    def enabled(self) -> bool:
        return max(self.noise_prob, self.speed_prob, self.reverb_prob) > 0

    def __post_init__(self) -> None:
        for name in ("noise_prob", "speed_prob", "reverb_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1]")
        if self.snr_db[0] > self.snr_db[1] or self.rt60_s[0] > self.rt60_s[1]:
            raise ValueError("ranges must be (low, high)")
        if any(f <= 0 for f in self.speed_factors):
            raise ValueError("speed factors must be positive")


# The recipe that `--augment` turns on.
DEFAULT_AUGMENT = AugmentConfig(noise_prob=0.5, speed_prob=0.3, reverb_prob=0.3)


@dataclass(frozen=True)
class AugmentSpec:
    """The augmentation of one utterance; the identity when every field is at its default."""

    speed: float = 1.0  # > 1 is faster and shorter (and higher, as with sox `speed`)
    rt60_s: float = 0.0  # 0 = no reverberation
    snr_db: float | None = None  # None = no noise
    noise: str = "white"
    seed: int = 0  # for the noise and the room response

    @property
    def is_identity(self) -> bool:
        return self.speed == 1.0 and self.rt60_s == 0.0 and self.snr_db is None


def draw_spec(config: AugmentConfig, rng: random.Random) -> AugmentSpec:
    """Draw one utterance's augmentation. Always consumes the same number of draws."""
    u_noise, u_speed, u_reverb = rng.random(), rng.random(), rng.random()
    snr = round(rng.uniform(*config.snr_db), 2)
    speed = rng.choice(config.speed_factors)
    rt60 = round(rng.uniform(*config.rt60_s), 3)
    noise = rng.choice(NOISE_KINDS)
    seed = rng.getrandbits(32)
    return AugmentSpec(
        speed=speed if u_speed < config.speed_prob else 1.0,
        rt60_s=rt60 if u_reverb < config.reverb_prob else 0.0,
        snr_db=snr if u_noise < config.noise_prob else None,
        noise=noise,
        seed=seed,
    )


def room_response(rt60_s: float, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """A synthetic room impulse response: direct path, then exponentially decaying noise.

    The decay reaches -60 dB after ``rt60_s`` seconds; early reflections start 1-5 ms
    after the direct sound, as in a small room.
    """
    n = int(rt60_s * sample_rate)
    t = np.arange(n) / sample_rate
    tail = rng.standard_normal(n) * 10 ** (-3 * t / rt60_s)  # 20*log10(...) = -60 dB at rt60
    delay = int(rng.uniform(0.001, 0.005) * sample_rate)
    tail[:delay] = 0.0
    h = 0.3 * tail / np.sqrt(np.sum(tail**2))  # reverberant energy 0.3 of the direct path's
    h[0] = 1.0
    return h


def reverberate(x: np.ndarray, rt60_s: float, rng: np.random.Generator) -> np.ndarray:
    """Convolve with a synthetic room (FFT convolution), keeping the original length."""
    h = room_response(rt60_s, SAMPLE_RATE, rng)
    n = len(x) + len(h) - 1
    size = 1 << (n - 1).bit_length()
    y = np.fft.irfft(np.fft.rfft(x, size) * np.fft.rfft(h, size), size)[: len(x)]
    return y.astype(np.float32)


def coloured_noise(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise with a white (flat), pink (1/f) or brown (1/f^2) power spectrum."""
    white = rng.standard_normal(n)
    if kind == "white":
        return white
    exponent = {"pink": 0.5, "brown": 1.0}[kind]  # amplitude ~ f^-exponent
    spectrum = np.fft.rfft(white)
    f = np.fft.rfftfreq(n)
    f[0] = f[1] if n > 1 else 1.0
    return np.fft.irfft(spectrum / f**exponent, n)


def add_noise(x: np.ndarray, snr_db: float, kind: str, rng: np.random.Generator) -> np.ndarray:
    """Add noise so that 10*log10(P_signal / P_noise) equals ``snr_db`` exactly."""
    noise = coloured_noise(kind, len(x), rng)
    p_signal = float(np.mean(x.astype(np.float64) ** 2))
    p_noise = float(np.mean(noise**2))
    if p_signal == 0.0 or p_noise == 0.0:
        return x
    scale = np.sqrt(p_signal / (p_noise * 10 ** (snr_db / 10)))
    return (x + scale * noise).astype(np.float32)


def apply(x: np.ndarray, spec: AugmentSpec) -> np.ndarray:
    """Apply ``spec`` to 16 kHz float audio: speed, then room, then noise (as a mic hears)."""
    if spec.is_identity:
        return x
    rng = np.random.default_rng(spec.seed)
    x = speed_perturb(x, spec.speed)
    if spec.rt60_s > 0:
        x = reverberate(x, spec.rt60_s, rng)
    if spec.snr_db is not None:
        x = add_noise(x, spec.snr_db, spec.noise, rng)
    return x

"""Small audio corpora written on the fly for the data tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from wav2vec2.config import BASE
from wav2vec2.data.manifest import write_manifest

# The shortest usable audio: the paper's encoder's receptive field, 400 samples (25 ms).
RF = BASE.feature_encoder.receptive_field


def write_wave(path: Path, frames: int, rate: int = 16_000, channels: int = 1, seed: int = 0):
    """Noise with a distinct ramp per file, so crops at different offsets differ."""
    rng = np.random.default_rng(seed)
    data = 0.1 * rng.standard_normal((frames, channels)) + np.linspace(-0.5, 0.5, frames)[:, None]
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, data.squeeze(1) if channels == 1 else data, rate, subtype="PCM_16")
    return path


@pytest.fixture
def corpus(tmp_path) -> tuple[Path, list[int]]:
    """12 utterances of 16 kHz audio, 0.1-0.65 s, and their manifest ``train.tsv``."""
    root = tmp_path / "audio"
    lengths = [1600 + 800 * k for k in range(12)]
    entries = []
    for k, n in enumerate(lengths):
        write_wave(root / f"u{k:02d}.wav", n, seed=k)
        entries.append((f"u{k:02d}.wav", n))
    write_manifest(tmp_path / "train.tsv", root, entries)
    return tmp_path / "train.tsv", lengths

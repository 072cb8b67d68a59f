"""Audio that only decoding shows to be bad, for the tests of what importers and evaluation
skip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf


def corrupt_flac(path: Path, samples: int = 16000) -> None:
    """A 16 kHz mono FLAC file whose header is sound and whose audio data is not (what a
    download cut short or a bad disk leaves): its header reports SAMPLES frames, but it
    does not decode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    wave = (0.3 * np.sin(np.arange(samples) / 10)).astype(np.float32)
    sf.write(path, wave, 16000, subtype="PCM_16")
    data = bytearray(path.read_bytes())
    for i in range(2000, len(data) - 100, 50):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    assert sf.info(str(path)).frames == samples  # the header alone looks fine

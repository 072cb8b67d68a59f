"""Helpers for tests of the console command: a short tone as an audio file, and one run of
the command with what it printed."""

from __future__ import annotations

import numpy as np
import soundfile as sf

from wav2vec2.cli import main

RATE = 16_000


def tone_file(path, seconds: float = 1.0):
    """A 300 Hz tone of ``seconds`` at 16 kHz, written to ``path`` (returned)."""
    t = np.arange(int(seconds * RATE)) / RATE
    sf.write(path, (0.3 * np.sin(2 * np.pi * 300 * t)).astype(np.float32), RATE)
    return path


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    """``wav2vec2 ARGV...``: (exit status, stdout, stderr)."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err

"""A long file read a block at a time, as the engine's chunks need it, never whole.

:class:`AudioStream` gives samples ``[start, end)`` of a file as the model sees it (16 kHz
mono float32, normalized if the model's config says), for chunks that come in file order
(:mod:`wav2vec2.chunking`: each chunk starts after the one before, and overlaps it only by
the context). It decodes the file forward in blocks of :data:`BLOCK` frames, averages each
block's channels and resamples block by block with soxr's ``ResampleStream``, and holds only
the samples from the current chunk's start on: one chunk and one block, whatever the length.

Forward reading rather than a seek per chunk: libsndfile seeks in every format it reads
(WAV, FLAC, OGG/Vorbis/Opus, MP3), but a resampler needs the samples before a chunk to
put the chunk's own samples where the whole file's resampling puts them. Read forward,
``ResampleStream`` gives the samples ``soxr.resample`` gives the whole file (the same HQ
filter and phase; equal to the last bit in ``tests/test_audio_stream.py``, which allows
1e-6), so a chunk read from the stream is the chunk of the whole-file path.

Normalization (zero mean, unit variance over the whole utterance, LARGE-LV60K) needs the
whole file's statistics before its first chunk: a first pass over the file accumulates them
in float64 (per block, merged as in Chan et al.'s parallel variance), and the chunks are
normalized with them, as the whole file would have been.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from wav2vec2.audio import _open_audio, _reason, normalize, to_mono
from wav2vec2.errors import Wav2Vec2Error

# Frames per read at the file's own rate: 4 s at 16 kHz, 0.26 MB of float32 per channel.
BLOCK = 1 << 16

_READ_ERRORS = (sf.LibsndfileError, RuntimeError, TypeError, ValueError)


def resampled_length(frames: int, rate: int, sample_rate: int) -> int:
    """Samples that ``soxr.resample`` makes of ``frames`` at ``rate``: frames * sample_rate /
    rate, rounded half up (checked against soxr in tests/test_audio_stream.py)."""
    return (2 * frames * sample_rate + rate) // (2 * rate)


def blocks(path: Path, sample_rate: int) -> Iterator[np.ndarray]:
    """The file's samples as mono float32 at ``sample_rate``, a block at a time; a
    Wav2Vec2Error naming ``path`` where the file turns out to be bad (corrupt data, NaN or
    infinite samples), however far into it that is."""
    with _open_audio(path) as handle:
        try:
            f = sf.SoundFile(handle)
        except _READ_ERRORS as exc:
            raise Wav2Vec2Error(f"unreadable audio ({_reason(exc)})", path) from None
        with f:
            rate = f.samplerate
            resampler = None
            if rate != sample_rate:
                resampler = soxr.ResampleStream(rate, sample_rate, 1, "float32", "HQ")
            done = 0  # frames read, at the file's rate
            while True:
                try:
                    data = f.read(BLOCK, dtype="float32", always_2d=True)
                except _READ_ERRORS as exc:
                    why = f"unreadable audio after {done / rate:.1f} s ({_reason(exc)})"
                    raise Wav2Vec2Error(why, path) from None
                if not np.isfinite(data).all():
                    first = done + int(np.argwhere(~np.isfinite(data))[0, 0])
                    raise Wav2Vec2Error(
                        f"audio holds NaN or infinite samples (the first at {first / rate:.2f} s)",
                        path,
                    )
                done += len(data)
                last = len(data) < BLOCK  # a short read is the end of the file
                mono = to_mono(data)
                yield mono if resampler is None else resampler.resample_chunk(mono, last=last)
                if last:
                    return


class AudioStream:
    """Samples of a file at ``sample_rate``, mono float32, read forward: each
    :meth:`read` starts at or after the previous one's start. ``num_samples``: the length
    its header promises at that rate (:func:`resampled_length`); a file that ends before
    it is an error when a read reaches the missing samples."""

    def __init__(self, path: str | Path, sample_rate: int, num_samples: int, normalized: bool):
        self.path = Path(path)
        self.sample_rate = sample_rate
        self.num_samples = num_samples
        self.normalized = normalized
        self._stats: tuple[float, float] | None = None  # (mean, variance) when normalized
        self._blocks: Iterator[np.ndarray] | None = None
        self._held: list[np.ndarray] = []  # consecutive blocks, the first from _offset
        self._offset = 0
        self._ended = False

    def __len__(self) -> int:
        return self.num_samples

    def read(self, start: int, end: int) -> np.ndarray:
        """Samples ``[start, end)``, a new array. The file is opened at the first read (and
        its statistics taken first when normalized), so errors surface here."""
        if start < self._offset or not 0 <= start < end <= self.num_samples:
            raise AssertionError(f"AudioStream reads forward only: [{start}, {end})")
        if self._blocks is None:
            if self.normalized:
                self._stats = self._statistics()
            self._blocks = blocks(self.path, self.sample_rate)
        held = sum(len(b) for b in self._held)
        while self._offset + held < end and not self._ended:
            block = next(self._blocks, None)
            if block is None:
                self._ended = True
            else:
                self._held.append(block)
                held += len(block)
        if self._offset + held < end:
            have, want = (self._offset + held) / self.sample_rate, end / self.sample_rate
            raise Wav2Vec2Error(
                f"unreadable audio (it ends at {have:.1f} s, its header promised at least "
                f"{want:.1f} s)",
                self.path,
            )
        while self._held and self._offset + len(self._held[0]) <= start:  # behind us now
            self._offset += len(self._held.pop(0))
        samples = np.concatenate(self._held)[start - self._offset : end - self._offset]
        return normalize(samples, *self._stats) if self._stats else samples.copy()

    def _statistics(self) -> tuple[float, float]:
        """(mean, variance) of the whole file at ``sample_rate``, by a first pass in
        float64, each block's (count, mean, sum of squared deviations) merged in."""
        count, mean, m2 = 0, 0.0, 0.0
        for block in blocks(self.path, self.sample_rate):
            n = len(block)
            if n == 0:
                continue
            b_mean = float(block.mean(dtype=np.float64))
            b_m2 = float(np.square(block.astype(np.float64) - b_mean).sum())
            delta, total = b_mean - mean, count + n
            mean += delta * n / total
            m2 += b_m2 + delta * delta * count * n / total
            count = total
        return mean, m2 / max(count, 1)

    def close(self) -> None:
        """Close the file and let the held samples go."""
        if self._blocks is not None:
            self._blocks.close()  # type: ignore[attr-defined]
        self._held = []

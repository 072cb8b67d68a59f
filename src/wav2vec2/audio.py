"""Audio loading: any format libsndfile reads -> 16 kHz mono float32.

Resampling uses soxr (a real band-limited resampler); multi-channel audio is averaged to
mono. Normalization (zero mean, unit variance per utterance) is applied when the model's
config asks for it, as fairseq's ``normalize`` and transformers' ``do_normalize`` do.
"""

from __future__ import annotations

import io
import stat
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from wav2vec2.errors import Wav2Vec2Error

SAMPLE_RATE = 16_000


def load_audio(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Read ``path`` as mono float32 at ``sample_rate``; raises Wav2Vec2Error on bad files:
    missing, a folder, a pipe, unreadable, not audio, corrupt, empty, or holding NaN or
    infinite samples (float WAV/FLAC can store them; the model would output garbage)."""
    path = Path(path)
    with _open_audio(path) as handle:
        return _decode(handle, path, sample_rate)


class AudioTooLong(Wav2Vec2Error):
    """The audio is longer than the caller's limit (``read_audio_bytes``' ``max_seconds``)."""


def read_audio_bytes(
    data: bytes, source: str, sample_rate: int = SAMPLE_RATE, max_seconds: float | None = None
) -> np.ndarray:
    """Audio file contents (any format libsndfile reads), decoded in memory, as ``load_audio``
    decodes a file, with the same errors naming ``source``. With ``max_seconds``, longer
    audio raises :class:`AudioTooLong` before it is decoded whole: a small compressed upload
    must not expand into hours of samples in memory."""
    if not data:
        raise Wav2Vec2Error("empty file (0 bytes)", source)
    return _decode(io.BytesIO(data), source, sample_rate, max_seconds)


def _decode(handle, source, sample_rate: int, max_seconds: float | None = None) -> np.ndarray:
    """An open audio file -> mono float32 at ``sample_rate`` (see ``load_audio``)."""
    try:
        frames = -1
        if max_seconds is not None:
            info = sf.info(handle)
            handle.seek(0)
            _check_length(info.frames, info.samplerate, max_seconds, source)
            frames = int(max_seconds * info.samplerate) + 1  # a header may understate
        data, rate = sf.read(handle, frames=frames, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise Wav2Vec2Error(f"unreadable audio ({_reason(exc)})", source) from None
    if data.shape[0] == 0:
        raise Wav2Vec2Error("empty audio (no samples)", source)
    if max_seconds is not None:
        _check_length(data.shape[0], rate, max_seconds, source)
    check_finite(data, source)
    return to_mono_16k(data, rate, sample_rate)


def _check_length(frames: int, rate: int, max_seconds: float, source) -> None:
    if frames > max_seconds * rate:
        raise AudioTooLong(f"audio longer than the {max_seconds:g} s limit", source)


def check_finite(wave: np.ndarray, source: str | Path | None = None) -> None:
    """Wav2Vec2Error unless every sample is a finite number: NaN or infinite samples would
    make every output of the model NaN, a silent wrong result (an empty transcript)."""
    if not np.isfinite(wave).all():
        bad = int(np.count_nonzero(~np.isfinite(wave)))
        raise Wav2Vec2Error(f"audio holds {bad} NaN or infinite samples", source)


def _open_audio(path: Path):
    """Open ``path`` for reading, or say in one line why it cannot be: soundfile's own
    messages for these cases are misleading ("Format not recognised" for a folder), and a
    named pipe would block the reader forever."""
    try:
        status = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        raise Wav2Vec2Error("no such audio file", path) from None
    except OSError as exc:
        raise Wav2Vec2Error(f"cannot read audio ({exc.strerror or exc})", path) from None
    if stat.S_ISDIR(status.st_mode):
        raise Wav2Vec2Error("is a folder, not an audio file", path)
    if not stat.S_ISREG(status.st_mode):
        raise Wav2Vec2Error("not a regular file (a pipe, socket or device)", path)
    if status.st_size == 0:
        raise Wav2Vec2Error("empty file (0 bytes)", path)
    try:
        return path.open("rb")
    except OSError as exc:
        raise Wav2Vec2Error(f"cannot read audio ({exc.strerror or exc})", path) from None


def to_mono(data: np.ndarray) -> np.ndarray:
    """(samples, channels) or (samples,) -> (samples,) float32, the channels averaged."""
    mono = data.mean(axis=1) if data.ndim == 2 else data
    return np.ascontiguousarray(mono, dtype=np.float32)


def to_mono_16k(data: np.ndarray, rate: int, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """(samples, channels) or (samples,) at ``rate`` -> (samples,) float32 at sample_rate."""
    mono = to_mono(data)
    if rate != sample_rate:
        mono = soxr.resample(mono, rate, sample_rate, quality="HQ").astype(np.float32)
    return mono


SPEED_RANGE = (0.5, 2.0)  # speed perturbation factors allowed


def check_speed_factors(factors, what: str = "speed factors") -> None:
    """Raise ValueError unless every factor is within :data:`SPEED_RANGE`."""
    low, high = SPEED_RANGE
    if any(not low <= f <= high for f in factors):
        raise ValueError(f"{what} must be in [{low:g}, {high:g}], got {list(factors)}")


def speed_perturb(x: np.ndarray, factor: float) -> np.ndarray:
    """Play ``x`` ``factor`` times faster, as sox's ``speed`` effect: resample by 1/factor,
    so tempo and pitch (and formants, like another vocal tract length) change together."""
    if factor == 1.0:
        return x
    return soxr.resample(x, SAMPLE_RATE * factor, SAMPLE_RATE, quality="HQ").astype(np.float32)


def normalize(wave: np.ndarray, mean: float | None = None, var: float | None = None) -> np.ndarray:
    """Zero mean, unit variance (eps 1e-7 inside the sqrt, as transformers). ``mean`` and
    ``var``: the whole utterance's, when ``wave`` is a piece of it (``AudioStream``)."""
    wave = wave.astype(np.float32)
    mean = wave.mean() if mean is None else np.float32(mean)
    var = wave.var() if var is None else np.float32(var)
    return (wave - mean) / np.sqrt(var + 1e-7)


def audio_info(path: str | Path) -> tuple[int, int]:
    """(frames, sample_rate) from the header, without decoding; Wav2Vec2Error if unreadable."""
    path = Path(path)
    with _open_audio(path) as handle:
        try:
            info = sf.info(handle)
        except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
            raise Wav2Vec2Error(f"unreadable audio ({_reason(exc)})", path) from None
    return int(info.frames), int(info.samplerate)


def _reason(exc: Exception) -> str:
    if getattr(exc, "error_string", None):  # libsndfile's own words, without the file object
        return exc.error_string.strip().removeprefix("Error : ")
    text = str(exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__

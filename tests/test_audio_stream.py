"""Long files read in chunks from disk (wav2vec2.audio_stream and the engine): the same
samples and emissions as the whole file read into memory, in memory that does not grow
with the file's length."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr
import torch

from wav2vec2 import Wav2Vec2Inference, Wav2Vec2Model
from wav2vec2.audio import load_audio, normalize
from wav2vec2.audio_stream import BLOCK, AudioStream, resampled_length
from wav2vec2.chunking import ChunkConfig, plan_chunks
from wav2vec2.config import FeatureEncoderConfig, TransformerConfig, Wav2Vec2Config
from wav2vec2.vocab import Vocabulary

RATE = 16_000
VOCAB = Vocabulary.from_fairseq_symbols(["|", *"ETAONISHRDLUCMWFGYPBVK'XJQZ"])


SHORT_CHUNKS = ChunkConfig(2.0, 0.5)  # a 3 s file runs whole, a 10 s one in 5 chunks


def engine(
    normalized: bool = False, chunking: ChunkConfig = SHORT_CHUNKS, fast: bool = False
) -> Wav2Vec2Inference:
    """A tiny random CTC model with the paper's 320-sample stride (50 frames per second);
    ``fast``: one conv layer and one block, barely a model, for an hour of audio in a test."""
    layers = ((16, 10, 5), (16, 8, 4), (16, 4, 4), (16, 4, 4))
    fe = FeatureEncoderConfig(
        conv_layers=((8, 320, 320),) if fast else layers, norm="layer", conv_bias=True
    )
    tr = TransformerConfig(
        dim=16 if fast else 32, layers=1 if fast else 2, heads=2, ffn_dim=64,
        pos_conv_kernel=8 if fast else 16, pos_conv_groups=2, layer_norm_first=True,
    )  # fmt: skip
    cfg = Wav2Vec2Config(
        feature_encoder=fe, transformer=tr, quantizer=None, pretraining=None,
        normalize_waveform=normalized, vocab_size=len(VOCAB.tokens),
    )  # fmt: skip
    torch.manual_seed(0)
    return Wav2Vec2Inference(Wav2Vec2Model(cfg).eval(), VOCAB, chunking=chunking)


def speech_like(frames: int, rate: int, channels: int = 1, seed: int = 0) -> np.ndarray:
    """Harmonics under a syllable envelope, noise and a DC offset (so that normalizing has
    a mean to remove), (frames, channels) float32."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames) / rate
    wave = sum(np.sin(2 * np.pi * k * 140 * t) / k for k in range(1, 6))
    wave = 0.2 * wave * np.clip(np.sin(2 * np.pi * 3 * t), 0, None) + 0.05
    out = wave[:, None] + 0.02 * rng.standard_normal((frames, channels))
    return out.astype(np.float32)


def write_long(path: Path, seconds: int, rate: int = RATE) -> Path:
    """A long 16-bit WAV written a minute at a time (never whole in this process)."""
    minute = (speech_like(60 * rate, rate) * 32767).astype(np.int16)
    with sf.SoundFile(path, "w", rate, 1, subtype="PCM_16") as f:
        for start in range(0, seconds, 60):
            f.write(minute[: (min(seconds - start, 60)) * rate])
    return path


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000, 12345])
def test_resampled_length_is_what_soxr_makes(rate):
    for frames in (1, 2, 441, 100_003, 7 * rate + 1):
        made = len(soxr.resample(np.zeros(frames, np.float32), rate, RATE, quality="HQ"))
        assert resampled_length(frames, rate, RATE) == made, frames


# (format, subtype, rate, channels): every container libsndfile reads that we list
FORMATS = [
    ("wav", "PCM_16", RATE, 1),
    ("flac", "PCM_16", 44100, 2),
    ("ogg", "VORBIS", 48000, 1),
    ("mp3", "MPEG_LAYER_III", 44100, 2),
]


@pytest.mark.parametrize("ext, subtype, rate, channels", FORMATS)
def test_chunks_read_from_the_stream_are_the_whole_files_samples(
    tmp_path, ext, subtype, rate, channels
):
    """Downmixed per block and resampled with soxr's stream, every chunk equals the same
    samples of the whole file read and resampled at once (to the last bit; 1e-6 allowed)."""
    if ext.upper() not in sf.available_formats():
        pytest.skip(f"this libsndfile has no {ext} (MP3 needs libsndfile 1.1)")
    path = tmp_path / f"in.{ext}"
    sf.write(path, speech_like(9 * rate + 123, rate, channels), rate, subtype=subtype)
    frames, file_rate = sf.info(str(path)).frames, sf.info(str(path)).samplerate
    whole = load_audio(path)
    assert resampled_length(frames, file_rate, RATE) == len(whole)
    fe = engine().cfg.feature_encoder
    chunks = plan_chunks(len(whole), ChunkConfig(1.0, 0.5), fe, RATE)
    assert len(chunks) > 5 and 9 * RATE > 2 * BLOCK  # several blocks per file
    for normalized in (False, True):
        stream = AudioStream(path, RATE, len(whole), normalized)
        expected = normalize(whole) if normalized else whole
        for c in chunks:
            np.testing.assert_allclose(stream.read(c.start, c.end), expected[c.start : c.end],
                                       rtol=0, atol=1e-6 if not normalized else 1e-5)  # fmt: skip
        stream.close()


@pytest.mark.parametrize(
    "rate, channels, normalized",
    [(RATE, 1, False), (44100, 2, False), (RATE, 1, True), (44100, 2, True)],
)
def test_streamed_emissions_equal_the_whole_file_in_memory(tmp_path, rate, channels, normalized):
    """The engine reads a long file chunk by chunk; passing the whole file's samples as an
    array (the in-memory path, normalized by the engine as the model says) gives the same
    logits within 1e-5, resampled and downmixed or not, normalized or not (measured: equal
    to the last bit, and within 2e-6 normalized: float64 statistics against float32)."""
    path = tmp_path / "long.flac"
    sf.write(path, speech_like(11 * rate + 77, rate, channels), rate, subtype="PCM_24")
    eng = engine(normalized)
    assert isinstance(eng._open(path), AudioStream)  # it runs in chunks: streamed
    (streamed,) = eng.emissions([path])
    (in_memory,) = eng.emissions([load_audio(path)])
    assert streamed.logits.shape == in_memory.logits.shape
    assert streamed.duration == pytest.approx(in_memory.duration)
    diff = (streamed.logits - in_memory.logits).abs().max().item()
    assert diff < 1e-5, diff


def test_short_files_are_loaded_whole_and_batched_as_before(tmp_path):
    eng = engine()
    paths = []
    for i, seconds in enumerate((1.0, 2.5, 0.7)):  # each runs whole (2 s + 2 x 0.5 s)
        paths.append(tmp_path / f"{i}.wav")
        sf.write(paths[-1], speech_like(int(seconds * RATE), RATE, seed=i), RATE)
    assert all(isinstance(eng._open(p), np.ndarray) for p in paths)
    together = eng.emissions(paths)
    for path, batched in zip(paths, together, strict=True):
        (alone,) = eng.emissions([path])
        assert (batched.logits - alone.logits).abs().max().item() < 1e-5


def test_a_long_file_gone_bad_mid_way_is_its_own_error_and_the_others_run(tmp_path):
    good = tmp_path / "good.wav"
    sf.write(good, speech_like(RATE, RATE), RATE)
    full = tmp_path / "full.flac"
    sf.write(full, speech_like(40 * RATE, RATE), RATE)
    cut = tmp_path / "cut.flac"  # a download cut short: the header promises 40 s
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    nan = tmp_path / "nan.wav"
    wave = speech_like(30 * RATE, RATE)
    wave[25 * RATE] = np.nan
    sf.write(nan, wave, RATE, subtype="FLOAT")
    eng = engine()
    results = eng.transcribe([good, cut, nan, good])
    assert [r.ok for r in results] == [True, False, False, True]
    assert results[0].text == results[3].text
    cut_error, nan_error = results[1].error, results[2].error
    assert str(cut) in cut_error and "unreadable audio after" in cut_error
    assert str(nan) in nan_error and "NaN or infinite samples (the first at 25.00 s)" in nan_error
    assert "\n" not in cut_error + nan_error


def test_memory_does_not_grow_with_the_length_of_the_file(tmp_path):
    """Peak traced memory (numpy's buffers and Python's objects: the audio read, its
    chunks, the batches' samples; torch's tensors are not traced) while the engine computes
    the emissions of 5 and of 20 minutes of audio, normalized, default chunking: the audio
    grows by 58 MB (16 kHz float32), the peak by under 1 MB."""
    eng = engine(normalized=True, chunking=ChunkConfig(), fast=True)
    peaks = {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # on a busy shared CI host, 2 threads spin: 5x slower
    try:
        for minutes in (5, 20):
            path = write_long(tmp_path / f"{minutes}.wav", minutes * 60)
            tracemalloc.start()
            (e,) = eng.emissions([path])
            peaks[minutes] = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            assert e.logits.shape[0] == eng.cfg.feature_encoder.num_frames(minutes * 60 * RATE)
            path.unlink()
    finally:
        torch.set_num_threads(threads)
    audio_growth = 15 * 60 * RATE * 4
    assert peaks[20] - peaks[5] < 1e6, peaks
    assert peaks[20] < 16e6, peaks  # a batch (30 s), a chunk and a block: a few MB
    assert audio_growth > 50 * (peaks[20] - peaks[5])
    # The probe sees audio: the whole 5 minutes read at once peak above their size.
    path = write_long(tmp_path / "probe.wav", 300)
    tracemalloc.start()
    load_audio(path)
    assert tracemalloc.get_traced_memory()[1] > 300 * RATE * 4
    tracemalloc.stop()

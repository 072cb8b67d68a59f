"""Long audio: chunks with context, stitched emissions (wav2vec2.chunking and the engine)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from hf_reference import make_ctc, save_with_processor
from wav2vec2 import BASE, Wav2Vec2Inference
from wav2vec2.chunking import ChunkConfig, plan_chunks, stitch
from wav2vec2.errors import Wav2Vec2Error
from wav2vec2.loading import load_pretrained

RATE = 16_000


@pytest.mark.parametrize("samples", [400, 16_000, 20 * RATE, 61 * RATE + 123, 3600 * RATE])
@pytest.mark.parametrize("chunk, context", [(20.0, 2.0), (5.0, 0.0), (1.0, 3.0)])
def test_chunks_keep_every_frame_once_in_order(samples, chunk, context):
    fe = BASE.feature_encoder
    chunks = plan_chunks(samples, ChunkConfig(chunk, context), fe, RATE)
    kept = [(c.keep_from, c.keep_to) for c in chunks]
    assert kept[0][0] == 0 and kept[-1][1] == fe.num_frames(samples)
    assert all(a[1] == b[0] for a, b in zip(kept, kept[1:]))
    for c in chunks:
        assert c.start % fe.stride == 0 and 0 <= c.start < c.end <= samples
        offset = c.start // fe.stride
        # the chunk's own frames include its core, with the context on each side where the
        # file has it
        assert c.keep_from - offset >= 0
        assert fe.num_frames(c.end - c.start) >= c.keep_to - offset
        left = (c.keep_from - offset) * fe.stride
        assert left >= min(c.keep_from * fe.stride, round(context * RATE) - fe.stride)


def test_short_files_run_whole():
    (only,) = plan_chunks(30 * RATE, ChunkConfig(20.0, 5.0), BASE.feature_encoder, RATE)
    assert (only.start, only.end) == (0, 30 * RATE)


def test_bad_settings_are_one_line_errors():
    with pytest.raises(Wav2Vec2Error, match="--chunk-seconds must be positive"):
        ChunkConfig(0.0)
    with pytest.raises(Wav2Vec2Error, match="--context-seconds"):
        ChunkConfig(10.0, -1.0)


@pytest.fixture(scope="module")
def layer_norm_model(tmp_path_factory):
    hf = save_with_processor(make_ctc("lv60k_like"), tmp_path_factory.mktemp("hf"))
    return load_pretrained(hf)


def test_stitched_encoder_frames_equal_the_whole_file(layer_norm_model):
    # The conv encoder with per-frame layer norm is exactly shift-equivariant: stitching its
    # output over chunks must give the whole file's frames, which checks every offset.
    model = layer_norm_model.model
    fe = model.cfg.feature_encoder
    wave = torch.randn(1, 7 * RATE + 77)
    with torch.no_grad():
        whole = model.feature_encoder(wave)[0].transpose(0, 1)  # (frames, channels)
        chunks = plan_chunks(wave.shape[1], ChunkConfig(1.0, 0.25), fe, RATE)
        parts = [model.feature_encoder(wave[:, c.start : c.end])[0].transpose(0, 1) for c in chunks]
    assert len(chunks) > 5
    stitched = stitch(chunks, parts, fe.stride)
    assert stitched.shape == whole.shape
    assert torch.allclose(stitched, whole, atol=1e-5)


def test_chunked_transcription_matches_whole_file(layer_norm_model, tmp_path):
    """With context on both sides, nearly every frame's best label is the whole file's:
    the chunk edges do not change the emissions enough to change the transcript much."""
    rng = np.random.default_rng(0)
    wave = (0.3 * rng.standard_normal(12 * RATE)).astype(np.float32)
    sf.write(tmp_path / "long.wav", wave, RATE, subtype="FLOAT")
    loaded = layer_norm_model
    whole = Wav2Vec2Inference(loaded.model, loaded.vocab, chunking=ChunkConfig(60.0, 0.0))
    chunked = Wav2Vec2Inference(loaded.model, loaded.vocab, chunking=ChunkConfig(2.0, 1.0))
    (a,) = whole.emissions([tmp_path / "long.wav"])
    (b,) = chunked.emissions([tmp_path / "long.wav"])
    assert a.logits.shape == b.logits.shape
    agree = (a.logits.argmax(-1) == b.logits.argmax(-1)).float().mean().item()
    assert agree > 0.95, agree
    without_context = Wav2Vec2Inference(loaded.model, loaded.vocab, chunking=ChunkConfig(2.0, 0))
    (c,) = without_context.emissions([tmp_path / "long.wav"])
    # the context is what keeps the edges right: without it the emissions move more
    error = (b.logits - a.logits).abs().mean().item()
    assert (c.logits - a.logits).abs().mean().item() > error

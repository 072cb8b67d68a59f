"""ONNX export and the ONNX Runtime backend: fp32 parity with PyTorch within 1e-4 (SMALL,
BASE-like: group norm and post-LN, LARGE-like: layer norm, pre-LN and in-graph waveform
normalization), padded batches equal to one input at a time, and the int8 export's
documented tolerance on real speech (docs/benchmarks.md, benchmarks/fast_path.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from hf_reference import make_ctc, save_with_processor
from wav2vec2 import Wav2Vec2Inference
from wav2vec2.loading import load_pretrained
from wav2vec2.onnx_backend import OnnxCTCModel
from wav2vec2.onnx_export import export_onnx

DEMO = Path(__file__).parent / "assets" / "demo_model"
TOL = 1e-4  # the fp32 parity


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    """Model folders: the demo's SMALL model and tiny random BASE- and LARGE-like ones."""
    root = tmp_path_factory.mktemp("models")
    found = {"small": DEMO}
    for name, hf in (("base_like", "base_like"), ("large_like", "lv60k_like")):
        found[name] = save_with_processor(make_ctc(hf), root / name)
    return found


@pytest.fixture(scope="module")
def exported(models, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("onnx")
    return {name: export_onnx(path, root / f"{name}.onnx") for name, path in models.items()}


def padded_batch(lengths: list[int], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    n = torch.tensor(lengths)
    x = 0.3 * torch.randn(len(lengths), max(lengths), generator=gen)
    return x * (torch.arange(max(lengths)) < n[:, None]), n


@pytest.mark.parametrize("name", ["small", "base_like", "large_like"])
def test_fp32_export_equals_pytorch_batched_and_alone(models, exported, name):
    loaded = load_pretrained(models[name])
    torch_engine = Wav2Vec2Inference(loaded.model, loaded.vocab)  # exact batching on
    onnx = OnnxCTCModel(exported[name])
    assert onnx.cfg.normalize_waveform == (name == "large_like")
    x, n = padded_batch([16_000, 7_000, 12_345])
    if loaded.model.cfg.normalize_waveform:  # the engine's loader normalizes: the graph does
        from wav2vec2.onnx_export import normalize_rows

        x_torch = normalize_rows(x, n)
    else:
        x_torch = x
    with torch.inference_mode():
        want = torch_engine.model.ctc(x_torch, n)
    got = onnx.ctc(x, n)
    assert torch.equal(got.frame_lengths, want.frame_lengths)
    for b, frames in enumerate(want.frame_lengths.tolist()):
        torch.testing.assert_close(
            got.logits[b, :frames], want.logits[b, :frames], atol=TOL, rtol=0
        )
        alone = onnx.ctc(x[b : b + 1, : n[b]], n[b : b + 1])
        assert alone.logits.shape[1] == frames
        torch.testing.assert_close(alone.logits[0], got.logits[b, :frames], atol=TOL, rtol=0)


def test_transcripts_and_times_through_the_engine_match(models, exported):
    """The engine around the backend is unchanged: the same text and word times."""
    rng = np.random.default_rng(1)
    waves = [(0.3 * rng.standard_normal(int(16_000 * s))).astype(np.float32) for s in (1, 2.5, 0.6)]
    for name in ("base_like", "large_like"):
        a = Wav2Vec2Inference.from_pretrained(models[name]).transcribe(waves)
        b = Wav2Vec2Inference.from_pretrained(exported[name]).transcribe(waves)
        assert [t.text for t in a] == [t.text for t in b]
        for ta, tb in zip(a, b):
            assert [(w.text, w.start, w.end) for w in ta.words] == [
                (w.text, w.start, w.end) for w in tb.words
            ]

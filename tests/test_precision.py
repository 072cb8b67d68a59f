"""Inference precision (``--precision``) and the unmasked attention of unpadded batches.

bf16/fp16 are the GPU path; autocast runs on the CPU too, so the engine's handling (autocast
around the model, float32 logits out, the ONNX backend refused) is tested here."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from wav2vec2 import Wav2Vec2Inference
from wav2vec2.cli import main
from wav2vec2.errors import Wav2Vec2Error
from wav2vec2.models import transformer

DEMO_MODEL = Path(__file__).parent / "assets" / "demo_model"


@pytest.fixture(scope="module")
def waves():
    rng = np.random.default_rng(0)
    return [(0.1 * rng.standard_normal(n)).astype(np.float32) for n in (24000, 17001)]


def test_bf16_engine_returns_float32_logits_close_to_fp32(waves):
    fp32 = Wav2Vec2Inference.from_pretrained(DEMO_MODEL)
    bf16 = Wav2Vec2Inference.from_pretrained(DEMO_MODEL, precision="bf16")
    for a, b in zip(fp32.emissions(waves), bf16.emissions(waves), strict=True):
        assert b.logits.dtype == torch.float32 and b.logits.shape == a.logits.shape
        # bf16 keeps 8 bits of mantissa: logits move, but the best label mostly does not
        err = float((a.logits - b.logits).norm() / a.logits.norm())
        assert 0 < err < 0.1, err
        same = (a.logits.argmax(-1) == b.logits.argmax(-1)).float().mean()
        assert same > 0.8, float(same)
    feats = bf16.features(waves[0])
    assert feats.dtype == np.float32


def test_precision_is_checked_and_onnx_refuses_half(tmp_path):
    with pytest.raises(Wav2Vec2Error, match="precision must be one of"):
        Wav2Vec2Inference.from_pretrained(DEMO_MODEL, precision="fp8")
    with pytest.raises(Wav2Vec2Error, match="ONNX backend runs in fp32 or int8, not bf16"):
        Wav2Vec2Inference.from_pretrained(DEMO_MODEL, backend="onnx", precision="bf16")


def test_cli_takes_precision(tmp_path, waves, capsys):
    wav = tmp_path / "a.wav"
    sf.write(wav, waves[0], 16000)
    assert main(["transcribe", str(DEMO_MODEL), str(wav), "--precision", "bf16"]) == 0
    assert capsys.readouterr().out.endswith("\n")
    with pytest.raises(SystemExit):
        main(["transcribe", str(DEMO_MODEL), str(wav), "--precision", "int4"])


def test_unpadded_batches_attend_without_a_mask(monkeypatch, waves):
    """With lengths but no row padded, SDPA gets no mask (CUDA's flash kernel needs none);
    a padded batch still gets one. Both give each input its output alone."""
    masks = []
    sdpa = transformer.F.scaled_dot_product_attention

    def spy(*args, attn_mask=None, **kw):
        masks.append(attn_mask)
        return sdpa(*args, attn_mask=attn_mask, **kw)

    monkeypatch.setattr(transformer.F, "scaled_dot_product_attention", spy)
    engine = Wav2Vec2Inference.from_pretrained(DEMO_MODEL)
    (alone,) = engine.emissions([waves[0]])
    assert masks and all(m is None for m in masks)
    masks.clear()
    batched = engine.emissions(waves)
    assert masks and all(m is not None for m in masks)
    torch.testing.assert_close(batched[0].logits, alone.logits, atol=1e-5, rtol=0)


@pytest.mark.parametrize("amx", [True, False])
def test_fast_path_is_bf16_where_the_cpu_has_amx_and_int8_elsewhere(monkeypatch, amx):
    from wav2vec2 import fast_path

    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)
    assert fast_path.bf16_is_fast("cpu") == amx
    assert fast_path.fast_path("cpu") == (("torch", "bf16") if amx else ("onnx-int8", "fp32"))


def test_cli_fast_runs_the_machines_fast_path(tmp_path, waves, capsys, monkeypatch):
    """--fast resolves to --precision bf16 on a CPU with AMX (int8 on one without: see
    tests/test_onnx.py), names its choice in evaluate's summary, and refuses a conflicting
    --backend or --precision in one line."""
    from wav2vec2.cli import decoding_args

    monkeypatch.setattr(decoding_args, "fast_path", lambda device: ("torch", "bf16"))
    wav = tmp_path / "a.wav"
    sf.write(wav, waves[0], 16000)
    assert main(["transcribe", str(DEMO_MODEL), str(wav), "--precision", "bf16"]) == 0
    want = capsys.readouterr().out
    assert main(["transcribe", str(DEMO_MODEL), str(wav), "--fast"]) == 0
    assert capsys.readouterr().out == want
    for flags in (["--backend", "onnx"], ["--precision", "fp32"]):
        assert main(["transcribe", str(DEMO_MODEL), str(wav), "--fast", *flags]) == 2
        err = capsys.readouterr().err
        assert "--fast runs" in err and flags[1] in err and len(err.splitlines()) == 1
    data = tmp_path / "data"
    data.mkdir()
    (data / "test.tsv").write_text(f"{tmp_path}\na.wav\t{len(waves[0])}\n")
    (data / "test.wrd").write_text("a word\n")
    out = tmp_path / "eval"
    argv = ["evaluate", str(DEMO_MODEL), "--data", str(data), "--split", "test", "--out", str(out)]
    assert main([*argv, "--fast"]) == 0
    summary = json.loads((out / "test_summary.json").read_text())
    assert (summary["backend"], summary["precision"]) == ("torch", "bf16")

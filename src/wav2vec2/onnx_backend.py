"""ONNX Runtime behind the inference engine: an exported CTC model (:mod:`wav2vec2.onnx_export`)
that the engine runs where it would run the PyTorch model.

:class:`OnnxCTCModel` offers what :class:`~wav2vec2.inference.Wav2Vec2Inference` asks of a
model: ``cfg`` and ``ctc(waveforms, lengths)`` -> logits and frame lengths. Everything
around that call (batching, long-audio chunks, decoders, timestamps, alignment) is the
engine's own, so it works unchanged.

Backends (``--backend`` on ``transcribe``, ``evaluate`` and ``serve``):

- ``torch``: the PyTorch model (the default);
- ``onnx``: ONNX Runtime, fp32 (the same logits within 1e-4);
- ``onnx-int8``: ONNX Runtime with int8 MatMuls (``--fast``), approximate: its accuracy cost
  is measured in docs/benchmarks.md.

An ``.onnx`` MODEL runs as exported. Any other MODEL with an ONNX backend is exported
(and quantized) into a temporary folder first, which costs seconds to a minute: export once
with ``wav2vec2 export onnx`` to reuse it.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from wav2vec2.config import Wav2Vec2Config
from wav2vec2.errors import Wav2Vec2Error
from wav2vec2.vocab import Vocabulary

BACKENDS = ("torch", "onnx", "onnx-int8")


@dataclass(frozen=True)
class OnnxCTCOutput:
    logits: Tensor  # (B, T, vocab) float32, as CTCOutput.logits
    frame_lengths: Tensor  # (B,) int64


def is_onnx(source: str | Path) -> bool:
    return Path(source).suffix == ".onnx" and Path(source).is_file()


class OnnxCTCModel:
    """An exported CTC model in an ONNX Runtime session on the CPU."""

    def __init__(self, path: str | Path, threads: int | None = None):
        """``threads``: intra-op threads (default: torch's, so both backends use the same)."""
        import onnxruntime as ort

        from wav2vec2 import onnx_export as ox

        path = Path(path)
        meta = ox.read_metadata(path)
        if meta.get(ox.META_FORMAT) != ox.FORMAT:
            raise Wav2Vec2Error("not an ONNX export of wav2vec2 (no wav2vec2 metadata)", path)
        try:
            self.cfg = Wav2Vec2Config.from_dict(json.loads(meta[ox.META_CONFIG]))
            self.vocab = Vocabulary.from_json(json.loads(meta[ox.META_VOCAB]))
        except (ValueError, KeyError, TypeError) as exc:
            raise Wav2Vec2Error(f"invalid wav2vec2 metadata ({exc})", path) from None
        self.weights = meta.get(ox.META_WEIGHTS, "fp32")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only: not its note on the optional input
        try:
            self.session = ort.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph...
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise Wav2Vec2Error(f"ONNX Runtime cannot load it ({msg})", path) from None
        # The engine normalizes each file whole (long ones before they are cut into chunks):
        # the graph's own normalization, on by default for the file alone, is turned off.
        optional = {i.name for i in self.session.get_overridable_initializers()}
        self._extra = {}
        if ox.NORMALIZE_INPUT in optional:
            self._extra[ox.NORMALIZE_INPUT] = np.array(False)

    @property
    def backend(self) -> str:
        return "onnx-int8" if self.weights == "int8" else "onnx"

    def ctc(self, waveforms: Tensor, lengths: Tensor) -> OnnxCTCOutput:
        """waveforms: (B, samples) float, zero-padded; lengths: (B,) valid samples."""
        feed = {
            "waveform": waveforms.detach().float().cpu().numpy(),
            "lengths": lengths.detach().long().cpu().numpy(),
            **self._extra,
        }
        logits, frames = self.session.run(None, feed)
        return OnnxCTCOutput(torch.from_numpy(logits), torch.from_numpy(frames))

    def encode(self, *args, **kw):
        raise Wav2Vec2Error("an ONNX export computes CTC logits only; use the model itself")


def onnx_model(source: str | Path, backend: str | None) -> tuple[OnnxCTCModel, Vocabulary]:
    """The ONNX Runtime model for ``source`` and ``backend`` ("onnx", "onnx-int8"; None for an
    ``.onnx`` file: as exported). A model that is not an export is exported first."""
    from wav2vec2 import onnx_export as ox

    if is_onnx(source):
        model = OnnxCTCModel(source)
        if backend is not None and backend != model.backend:
            have = "an int8" if model.weights == "int8" else "an fp32"
            raise Wav2Vec2Error(
                f"is {have} ONNX export: it runs as --backend {model.backend} only (export "
                f"{'with' if backend == 'onnx-int8' else 'without'} --int8 for {backend})",
                source,
            )
        return model, model.vocab
    if backend not in ("onnx", "onnx-int8"):
        raise ValueError(f"not an ONNX backend: {backend!r}")
    with tempfile.TemporaryDirectory(prefix="wav2vec2-onnx-") as tmp:
        path = ox.export_onnx(source, Path(tmp) / "model.onnx", int8=backend == "onnx-int8")
        model = OnnxCTCModel(path)  # the session holds the graph: the file may go
    return model, model.vocab

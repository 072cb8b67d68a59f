"""``wav2vec2 export onnx``: a CTC model as one ONNX file that transcribes on its own.

The graph takes ``waveform`` (B, T) float32, zero-padded, and ``lengths`` (B,) int64 valid
samples, both axes dynamic, and returns ``logits`` (B, frames, vocab) and ``frame_lengths``
(B,) int64. Padding is exact: a group-norm encoder takes its statistics over each row's
valid samples (``MaskedGroupNorm``) and attention skips padded frames, so a padded batch
gives every row the logits it gets alone. A model whose config has ``normalize_waveform``
(LARGE-LV60K style) normalizes each row inside the graph, over its valid samples.

The vocabulary and config go into the file's ``metadata_props`` (:data:`META_*` keys), so
the ``.onnx`` alone can transcribe (:mod:`wav2vec2.onnx_backend` reads them back).

``int8=True`` quantizes the MatMuls (Transformer and projections) to int8 weights and
dynamically quantized int8 activations with ONNX Runtime's ``quantize_dynamic``; its cost
in accuracy is measured in docs/benchmarks.md (benchmarks/fast_path.py).
"""

from __future__ import annotations

import json
import logging
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from wav2vec2.atomic import atomic_write, check_file_dest
from wav2vec2.errors import Wav2Vec2Error
from wav2vec2.loading import load_pretrained
from wav2vec2.models.wav2vec2 import Wav2Vec2Model
from wav2vec2.vocab import Vocabulary

FORMAT = "wav2vec2-onnx"  # META_FORMAT's value: what `export onnx` wrote, and so may replace
FORMAT_VERSION = 1
META_FORMAT, META_VERSION = "wav2vec2.format", "wav2vec2.format_version"
META_CONFIG, META_VOCAB = "wav2vec2.config", "wav2vec2.vocab"  # JSON, as our model dir's
META_WEIGHTS = "wav2vec2.weights"  # "fp32" or "int8"
INPUTS, OUTPUTS = ("waveform", "lengths"), ("logits", "frame_lengths")
NORMALIZE_INPUT = "normalize"  # optional, default True: see CTCGraph
OPSET = 17  # LayerNormalization is a single op from 17 on
NOT_CTC = "has no CTC head and vocabulary: only CTC models export to ONNX"
NORMALIZE_EPS = 1e-7  # as wav2vec2.audio.normalize (and transformers)


def normalize_rows(waveform: Tensor, lengths: Tensor) -> Tensor:
    """Each row to zero mean and unit variance over its valid samples, padding kept zero:
    ``audio.normalize`` of every row alone, in torch for the graph. (B, T) -> (B, T)."""
    mask = torch.arange(waveform.shape[-1], device=waveform.device)[None, :] < lengths[:, None]
    mask = mask.to(waveform.dtype)
    n = lengths.clamp(min=1).to(waveform.dtype)[:, None]
    mean = (waveform * mask).sum(-1, keepdim=True) / n
    var = ((waveform - mean).square() * mask).sum(-1, keepdim=True) / n
    return (waveform - mean) * torch.rsqrt(var + NORMALIZE_EPS) * mask


class CTCGraph(nn.Module):
    """What is exported: (waveform, lengths) -> (logits, frame_lengths), with the input
    normalization the model's config asks for.

    A normalizing model's graph has a third input, ``normalize`` (bool scalar), stored with
    the default True as an initializer (:func:`make_optional`): ONNX Runtime lists only
    waveform and lengths as inputs, and the file alone normalizes. The engine feeds False:
    it has normalized each file as a whole already, long files before they are cut into
    chunks, as the PyTorch backend does."""

    def __init__(self, model: Wav2Vec2Model):
        super().__init__()
        self.model = model
        self.normalize = model.cfg.normalize_waveform

    def forward(
        self, waveform: Tensor, lengths: Tensor, normalize: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        if self.normalize:
            waveform = torch.where(normalize, normalize_rows(waveform, lengths), waveform)
        out = self.model.ctc(waveform, lengths)
        return out.logits, out.frame_lengths


def make_optional(proto, name: str = NORMALIZE_INPUT, default: bool = True) -> None:
    """Give graph input ``name`` a default value: an initializer of the same name, which
    ONNX Runtime treats as an input the caller may override (and may leave out)."""
    from onnx import numpy_helper

    if any(i.name == name for i in proto.graph.input):
        proto.graph.initializer.append(numpy_helper.from_array(np.array(default), name))


def prepare_for_export(model: Wav2Vec2Model) -> Wav2Vec2Model:
    """The model as the graph runs it (in place): eval mode, padding-exact group norm, and the
    positional conv's weight norm folded into a plain weight (the same numbers, one tensor
    instead of a norm per call)."""
    model.eval()
    if model.cfg.feature_encoder.norm == "group":
        model.set_masked_group_norm(True)
    conv = model.encoder.pos_conv.conv
    if parametrize.is_parametrized(conv, "weight"):
        parametrize.remove_parametrizations(conv, "weight", leave_parametrized=True)
    return model


def export_graph(model: Wav2Vec2Model, path: Path) -> None:
    """Write the fp32 graph of ``model`` (prepared by :func:`prepare_for_export`) to ``path``.

    The TorchScript exporter (``dynamo=False``): it traces this model into plain ONNX ops
    with dynamic axes as declared, needs no onnxscript, and its graph runs as fast as the
    dynamo exporter's in ONNX Runtime for a Transformer encoder."""
    rf = model.cfg.feature_encoder.receptive_field
    # Two rows of different lengths, so that the padding path is what is traced.
    lengths = torch.tensor([4 * rf, 3 * rf])
    waveform = torch.randn(2, int(lengths.max())) * (torch.arange(4 * rf) < lengths[:, None])
    args, names = (waveform, lengths), list(INPUTS)
    if model.cfg.normalize_waveform:
        args, names = (*args, torch.tensor(True)), [*names, NORMALIZE_INPUT]
    dynamic = {
        "waveform": {0: "batch", 1: "samples"},
        "lengths": {0: "batch"},
        "logits": {0: "batch", 1: "frames"},
        "frame_lengths": {0: "batch"},
    }
    with warnings.catch_warnings(), torch.no_grad():
        # shape checks (receptive field) become constants in a trace; the graph is only
        # ever fed audio the engine checked first
        warnings.simplefilter("ignore")
        torch.onnx.export(
            CTCGraph(model), args, str(path), dynamo=False,
            input_names=names, output_names=list(OUTPUTS), dynamic_axes=dynamic,
            opset_version=OPSET,
        )  # fmt: skip


def quantize_int8(src: Path, dest: Path) -> None:
    """int8 weights and dynamically quantized int8 activations for every MatMul (the
    Transformer's linear layers, the feature projection and the CTC head): ONNX Runtime's
    ``quantize_dynamic``. Convolutions stay fp32: ONNX Runtime's int8 convolution for
    dynamic activations (ConvInteger) ran 3x slower than fp32 here, and the encoder's convs
    as int8 MatMuls put 27% relative error on the logits (their activations span a wide
    range with no norm between them; docs/benchmarks.md)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    logging.disable(logging.WARNING)  # its advice to pre-process, printed on every call
    try:
        quantize_dynamic(src, dest, op_types_to_quantize=["MatMul"], weight_type=QuantType.QInt8)
    finally:
        logging.disable(logging.NOTSET)


def add_metadata(model_proto, cfg, vocab: Vocabulary, weights: str) -> None:
    """Config, vocabulary and weight kind into ``metadata_props``: the file alone transcribes."""
    meta = {
        META_FORMAT: FORMAT,
        META_VERSION: str(FORMAT_VERSION),
        META_CONFIG: json.dumps(cfg.to_dict()),
        META_VOCAB: json.dumps(vocab.to_json(), ensure_ascii=False),
        META_WEIGHTS: weights,
    }
    del model_proto.metadata_props[:]
    for key, value in meta.items():
        entry = model_proto.metadata_props.add()
        entry.key, entry.value = key, value


def read_metadata(path: str | Path) -> dict[str, str]:
    """The ``metadata_props`` of an ONNX file, without loading its weights."""
    import onnx

    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError, OSError, ValueError...
        raise Wav2Vec2Error(f"not an ONNX model ({type(exc).__name__})", path) from None
    return {p.key: p.value for p in proto.metadata_props}


def is_our_export(path: Path) -> bool:
    """Whether ``path`` is a file that `export onnx` wrote, and so one it may replace."""
    try:
        return path.is_file() and read_metadata(path).get(META_FORMAT) == FORMAT
    except Wav2Vec2Error:
        return False


def check_onnx_dest(dest: Path) -> None:
    """Refuse, before any work, an OUT that exists and is not an earlier export of ours:
    nothing is written over what this command did not write."""
    check_file_dest(dest)
    if dest.exists() and not is_our_export(dest):
        raise Wav2Vec2Error(
            "exists and is not an ONNX export of wav2vec2; give a new file name", dest
        )


def export_model(
    model: Wav2Vec2Model, vocab: Vocabulary | None, dest: str | Path, int8: bool = False
) -> Path:
    """Write ``model`` (a CTC model; prepared in place) with ``vocab`` as one ONNX file at
    ``dest``, atomically."""
    import onnx

    dest = Path(dest)
    if model.ctc_head is None or vocab is None:
        raise Wav2Vec2Error(NOT_CTC)
    prepare_for_export(model)
    with tempfile.TemporaryDirectory(prefix="wav2vec2-onnx-") as tmp:
        graph = Path(tmp) / "fp32.onnx"
        export_graph(model, graph)
        if int8:
            quantize_int8(graph, Path(tmp) / "int8.onnx")
            graph = Path(tmp) / "int8.onnx"
        proto = onnx.load(str(graph))
    make_optional(proto)
    add_metadata(proto, model.cfg, vocab, "int8" if int8 else "fp32")
    atomic_write(dest, lambda path: onnx.save(proto, str(path)))
    return dest


def export_onnx(source: str | Path, dest: str | Path, int8: bool = False) -> Path:
    """``wav2vec2 export onnx SOURCE DEST [--int8]``: any model :mod:`wav2vec2.loading`
    reads, as an ONNX file. DEST is checked before the model is read."""
    dest = Path(dest)
    check_onnx_dest(dest)
    if Path(source).exists() and dest.exists() and Path(source).resolve() == dest.resolve():
        raise Wav2Vec2Error("is the model being exported; give another OUT", dest)
    loaded = load_pretrained(source)
    if loaded.model.ctc_head is None or loaded.vocab is None:
        raise Wav2Vec2Error(NOT_CTC, source)
    return export_model(loaded.model, loaded.vocab, dest, int8)

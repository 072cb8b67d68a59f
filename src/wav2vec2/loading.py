"""Read any supported model and build our network from it.

Every command that takes a MODEL goes through :func:`read_checkpoint`, which accepts:

- our model directory (``config.json`` with ``"format": "wav2vec2"`` + ``model.safetensors``
  [+ ``vocab.json``]);
- a HuggingFace directory (``config.json`` with ``"model_type": "wav2vec2"`` + weights);
- a fairseq checkpoint ``.pt`` (or a directory holding exactly one);
- a HuggingFace hub id such as ``facebook/wav2vec2-base-960h``, resolved through the
  local huggingface_hub cache.

Each reader returns the same :class:`LoadedCheckpoint`; :func:`load_pretrained` turns it
into the network in eval mode beside its vocabulary.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from wav2vec2.checkpoint.model_dir import CONFIG_FILE, FORMAT, LoadedCheckpoint, read_model_dir
from wav2vec2.errors import Wav2Vec2Error
from wav2vec2.interop import fairseq, hub, huggingface
from wav2vec2.models.wav2vec2 import Wav2Vec2Model
from wav2vec2.vocab import Vocabulary


@dataclass(frozen=True)
class LoadedModel:
    model: Wav2Vec2Model  # in eval mode
    vocab: Vocabulary | None  # what the CTC head's outputs mean; None for encoders
    source: str  # the format it was read from: "wav2vec2", "huggingface" or "fairseq"


def detect_format(path: Path) -> str:
    """'wav2vec2', 'huggingface' or 'fairseq' for an existing path; Wav2Vec2Error otherwise."""
    if path.is_file():
        if path.suffix in (".pt", ".pth", ".ckpt"):
            return "fairseq"
        if path.name == CONFIG_FILE:
            return detect_format(path.parent)
        raise Wav2Vec2Error("not a model: expected a directory or a fairseq .pt file", path)
    cfg_path = path / CONFIG_FILE
    if cfg_path.is_file():
        try:
            cfg = json.loads(cfg_path.read_text())
        except (OSError, ValueError) as exc:
            raise Wav2Vec2Error(f"config.json is not valid JSON ({exc})", cfg_path) from None
        if not isinstance(cfg, dict):
            raise Wav2Vec2Error("config.json is not a JSON object", cfg_path)
        if cfg.get("format") == FORMAT:
            return "wav2vec2"
        if cfg.get("model_type") == "wav2vec2":
            return "huggingface"
        kind = cfg.get("model_type") or cfg.get("architectures") or "unknown"
        raise Wav2Vec2Error(f"unsupported model type {kind!r} (only wav2vec2 is)", cfg_path)
    checkpoints = sorted(path.glob("*.pt"))
    if len(checkpoints) == 1:
        return "fairseq"
    raise Wav2Vec2Error("no config.json (and not exactly one fairseq .pt) in this directory", path)


def read_checkpoint(source: str | Path) -> LoadedCheckpoint:
    """Read weights, config and vocabulary from any supported source (see module doc)."""
    path = Path(source)
    if not path.exists():
        if hub.looks_like_hub_id(str(source)):
            path = hub.resolve_hub_id(str(source))
        else:
            raise Wav2Vec2Error("no such file or directory", source)
    kind = detect_format(path)
    if kind == "wav2vec2":
        path = path if path.is_dir() else path.parent
        ckpt = read_model_dir(path)
    elif kind == "huggingface":
        path = path if path.is_dir() else path.parent
        ckpt = huggingface.read_hf_dir(path)
    else:
        path = next(iter(sorted(path.glob("*.pt")))) if path.is_dir() else path
        ckpt = fairseq.read_fairseq_checkpoint(path)
    check_weights(ckpt, path)
    return ckpt


def check_weights(ckpt: LoadedCheckpoint, where: str | Path) -> None:
    """Every tensor the config needs is there, with its shape and a numeric kind that fits,
    and nothing else: a mismatch is one Wav2Vec2Error naming ``where`` and the first bad
    tensor, before any network is built (torch's own error is a multi-line traceback)."""
    with torch.device("meta"):  # shapes and dtypes only, no memory
        expected = Wav2Vec2Model(ckpt.config).state_dict()
    got = ckpt.state_dict
    missing, unexpected = sorted(expected.keys() - got.keys()), sorted(got.keys() - expected)
    if missing or unexpected:
        raise Wav2Vec2Error(
            f"weights do not match the config ({ckpt.source}): "
            f"missing {missing[:5]}, unexpected {unexpected[:5]}",
            where,
        )
    for name, want in expected.items():
        tensor = got[name]
        if tuple(tensor.shape) != tuple(want.shape):
            raise Wav2Vec2Error(
                f"weight {name} has shape {list(tensor.shape)}, the config needs "
                f"{list(want.shape)}",
                where,
            )
        if tensor.is_floating_point() != want.is_floating_point() or tensor.is_complex():
            raise Wav2Vec2Error(
                f"weight {name} is {str(tensor.dtype).removeprefix('torch.')}, "
                f"the config needs {str(want.dtype).removeprefix('torch.')}",
                where,
            )


def build_model(ckpt: LoadedCheckpoint, device: str | torch.device = "cpu") -> Wav2Vec2Model:
    """The network in eval mode from weights :func:`check_weights` accepts (every reader's
    output is checked by :func:`read_checkpoint`)."""
    # Built on the meta device and given the loaded tensors directly: no random init and no
    # second copy of the weights (half the peak memory of init-then-copy).
    with torch.device("meta"):
        model = Wav2Vec2Model(ckpt.config)
    state = {k: v.float() if v.is_floating_point() else v for k, v in ckpt.state_dict.items()}
    model.load_state_dict(state, strict=True, assign=True)
    return model.to(device).eval()


def load_pretrained(source: str | Path, device: str | torch.device = "cpu") -> LoadedModel:
    """Any supported model -> the network in eval mode, with its vocabulary (CTC models)."""
    ckpt = read_checkpoint(source)
    return LoadedModel(build_model(ckpt, device), ckpt.vocab, ckpt.source)


def load_model(source: str | Path, device: str | torch.device = "cpu") -> Wav2Vec2Model:
    """Any supported model -> :class:`Wav2Vec2Model` in eval mode, for callers that need only
    the network (:func:`load_pretrained` keeps the vocabulary too)."""
    return load_pretrained(source, device).model

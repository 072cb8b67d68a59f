"""Read any supported model into our own representation, and write our model directory.

Every command that takes a MODEL goes through :func:`read_checkpoint`, which accepts:

- our model directory (``config.json`` with ``"format": "wav2vec2"`` + ``model.safetensors``
  [+ ``vocab.json``]);
- a HuggingFace directory (``config.json`` with ``"model_type": "wav2vec2"`` + weights);
- a fairseq checkpoint ``.pt`` (or a directory holding exactly one);
- a HuggingFace hub id such as ``facebook/wav2vec2-base-960h``, resolved through the
  local huggingface_hub cache.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor

from wav2vec2.atomic import atomic_write, write_text_atomic
from wav2vec2.config import Wav2Vec2Config
from wav2vec2.errors import Wav2Vec2Error
from wav2vec2.models.wav2vec2 import Wav2Vec2Model
from wav2vec2.vocab import Vocabulary

FORMAT = "wav2vec2"
FORMAT_VERSION = 1
CONFIG_FILE, WEIGHTS_FILE, VOCAB_FILE = "config.json", "model.safetensors", "vocab.json"


@dataclass(frozen=True)
class LoadedCheckpoint:
    config: Wav2Vec2Config
    state_dict: dict[str, Tensor]  # in our parameter names
    vocab: Vocabulary | None
    source: str  # "wav2vec2", "huggingface" or "fairseq"


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
        from wav2vec2.interop import hub

        if hub.looks_like_hub_id(str(source)):
            path = hub.resolve_hub_id(str(source))
        else:
            raise Wav2Vec2Error("no such file or directory", source)
    kind = detect_format(path)
    if kind == "wav2vec2":
        return read_model_dir(path if path.is_dir() else path.parent)
    if kind == "huggingface":
        from wav2vec2.interop import huggingface

        return huggingface.read_hf_dir(path if path.is_dir() else path.parent)
    if path.is_dir():
        path = next(iter(sorted(path.glob("*.pt"))))
    from wav2vec2.interop import fairseq

    return fairseq.read_fairseq_checkpoint(path)


def build_model(ckpt: LoadedCheckpoint, device: str | torch.device = "cpu") -> Wav2Vec2Model:
    # Built on the meta device and given the loaded tensors directly: no random init and no
    # second copy of the weights (half the peak memory of init-then-copy).
    with torch.device("meta"):
        model = Wav2Vec2Model(ckpt.config)
    state = {k: v.float() if v.is_floating_point() else v for k, v in ckpt.state_dict.items()}
    missing, unexpected = model.load_state_dict(state, strict=False, assign=True)
    if missing or unexpected:
        raise Wav2Vec2Error(
            f"weights do not match the config ({ckpt.source}): "
            f"missing {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]}"
        )
    model.vocab = ckpt.vocab
    return model.to(device).eval()


def load_model(source: str | Path, device: str | torch.device = "cpu") -> Wav2Vec2Model:
    """Any supported model -> :class:`Wav2Vec2Model` in eval mode (``model.vocab`` set for
    CTC models)."""
    return build_model(read_checkpoint(source), device)


# -- our own directory format --------------------------------------------------------------


def read_model_dir(path: Path) -> LoadedCheckpoint:
    cfg_path = path / CONFIG_FILE
    try:
        meta = json.loads(cfg_path.read_text())
        config = Wav2Vec2Config.from_dict(meta["model"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise Wav2Vec2Error(f"invalid wav2vec2 config ({exc})", cfg_path) from None
    state = load_safetensors(path / WEIGHTS_FILE)
    vocab = Vocabulary.load(path / VOCAB_FILE) if (path / VOCAB_FILE).is_file() else None
    return LoadedCheckpoint(config, state, vocab, "wav2vec2")


def load_safetensors(path: Path) -> dict[str, Tensor]:
    if not path.is_file():
        raise Wav2Vec2Error("weights file is missing", path)
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise Wav2Vec2Error(f"corrupt or truncated weights file ({exc})", path) from None


def save_model_dir(model: Wav2Vec2Model, dest: str | Path, vocab: Vocabulary | None = None) -> Path:
    """Write config.json + model.safetensors (+ vocab.json), each file atomically."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    vocab = vocab if vocab is not None else getattr(model, "vocab", None)
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "model": model.cfg.to_dict()}
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    atomic_write(dest / WEIGHTS_FILE, lambda p: save_file(state, str(p)))
    if vocab is not None:
        atomic_write(dest / VOCAB_FILE, vocab.save)
    write_text_atomic(dest / CONFIG_FILE, json.dumps(meta, indent=2) + "\n")
    return dest

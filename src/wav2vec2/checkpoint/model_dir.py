"""Our model directory: ``config.json`` + ``model.safetensors`` (+ ``vocab.json`` for CTC
models), and :class:`LoadedCheckpoint`, the neutral record every reader returns (ours here,
HuggingFace and fairseq in ``interop/``).

``config.json`` holds ``{"format": "wav2vec2", "format_version": 1, "model": {...}}``, the
model config as :meth:`Wav2Vec2Config.to_dict` writes it. Only JSON and safetensors are read,
so loading a model directory cannot execute code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import Tensor

from wav2vec2.atomic import (
    atomic_dir,
    check_replaceable_dir,
    write_safetensors_atomic,
    write_text_atomic,
)
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
    vocab: Vocabulary | None  # the CTC head's output units; None for encoders
    source: str  # "wav2vec2", "huggingface" or "fairseq"


def read_model_dir(path: Path) -> LoadedCheckpoint:
    cfg_path = path / CONFIG_FILE
    try:
        meta = json.loads(cfg_path.read_text())
        config = Wav2Vec2Config.from_dict(meta["model"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise Wav2Vec2Error(f"invalid wav2vec2 config ({exc})", cfg_path) from None
    state = load_safetensors(path / WEIGHTS_FILE)
    vocab = Vocabulary.load(path / VOCAB_FILE) if (path / VOCAB_FILE).is_file() else None
    return LoadedCheckpoint(config, state, vocab, FORMAT)


def load_safetensors(path: Path) -> dict[str, Tensor]:
    if not path.is_file():
        raise Wav2Vec2Error("weights file is missing", path)
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise Wav2Vec2Error(f"corrupt or truncated weights file ({exc})", path) from None


def is_model_dir(path: Path) -> bool:
    """Whether ``path`` holds our model directory and nothing else: what
    :func:`save_model_dir` writes, and so what it may replace."""
    names = {p.name for p in path.iterdir()}
    if not names <= {CONFIG_FILE, WEIGHTS_FILE, VOCAB_FILE} or CONFIG_FILE not in names:
        return False
    try:
        return json.loads((path / CONFIG_FILE).read_text()).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def check_model_dest(dest: str | Path) -> None:
    """Refuse a DEST that holds anything but an earlier model directory of ours (a
    HuggingFace or fairseq model, a training checkpoint, other files)."""
    check_replaceable_dir(dest, is_model_dir, "a wav2vec2 model directory")


def save_model_dir(model: Wav2Vec2Model, dest: str | Path, vocab: Vocabulary | None = None) -> Path:
    """Write config.json + model.safetensors (+ vocab.json) as one folder, put in place whole:
    an existing DEST (only ever an earlier model directory, :func:`check_model_dest`) is
    replaced by a complete one or left as it was."""
    dest = Path(dest)
    check_model_dest(dest)
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "model": model.cfg.to_dict()}
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    with atomic_dir(dest) as tmp:
        write_safetensors_atomic(tmp / WEIGHTS_FILE, state)
        if vocab is not None:
            vocab.save(tmp / VOCAB_FILE)
        write_text_atomic(tmp / CONFIG_FILE, json.dumps(meta, indent=2) + "\n")
    return dest

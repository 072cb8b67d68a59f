"""Our model directory: ``config.json`` + ``model.safetensors`` (+ ``vocab.json`` for CTC
models), and :class:`LoadedCheckpoint`, the neutral record every reader returns (ours here,
HuggingFace and fairseq in ``interop/``).

``config.json`` holds ``{"format": "wav2vec2", "format_version": 1, "model": {...}}``, the
model config as :meth:`Wav2Vec2Config.to_dict` writes it. Only JSON and safetensors are read,
so loading a model directory cannot execute code.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

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


def save_safetensors(tensors: dict[str, Tensor], path: Path) -> None:
    """safetensors' ``save_file``, except that a write the system refuses (disk full, no
    permission) raises the ``OSError`` it is: safetensors wraps it in a ``SafetensorError``
    ("I/O error: No space left on device (os error 28)"), which ``atomic_write`` would pass on
    as a traceback instead of one line naming the file."""
    try:
        save_file(tensors, str(path))
    except SafetensorError as exc:
        found = re.search(r"\(os error (\d+)\)", str(exc))
        if found is None:
            raise
        code = int(found.group(1))
        raise OSError(code, os.strerror(code)) from None


def save_model_dir(model: Wav2Vec2Model, dest: str | Path, vocab: Vocabulary | None = None) -> Path:
    """Write config.json + model.safetensors (+ vocab.json), each file atomically."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "model": model.cfg.to_dict()}
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    atomic_write(dest / WEIGHTS_FILE, lambda p: save_safetensors(state, p))
    if vocab is not None:
        atomic_write(dest / VOCAB_FILE, vocab.save)
    write_text_atomic(dest / CONFIG_FILE, json.dumps(meta, indent=2) + "\n")
    return dest

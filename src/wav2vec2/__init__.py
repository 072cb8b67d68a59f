"""wav2vec 2.0 (Baevski et al., 2020) from scratch on PyTorch.

The public names below are imported on first use (PEP 562), so that ``import wav2vec2.cli``
does not import torch: the command can then re-execute itself under tcmalloc before any
heavy import (:mod:`wav2vec2.allocator`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> the module that defines it
_EXPORTS = {
    "Alignment": "wav2vec2.alignment",
    "BASE": "wav2vec2.config",
    "LARGE": "wav2vec2.config",
    "LARGE_LV60K": "wav2vec2.config",
    "PRESETS": "wav2vec2.config",
    "SMALL": "wav2vec2.config",
    "Wav2Vec2Config": "wav2vec2.config",
    "preset": "wav2vec2.config",
    "Transcript": "wav2vec2.inference",
    "Wav2Vec2Inference": "wav2vec2.inference",
    "LoadedModel": "wav2vec2.loading",
    "load_model": "wav2vec2.loading",
    "load_pretrained": "wav2vec2.loading",
    "Wav2Vec2Model": "wav2vec2.models.wav2vec2",
}

__all__ = [
    "Alignment",
    "BASE",
    "LARGE",
    "LARGE_LV60K",
    "PRESETS",
    "SMALL",
    "Transcript",
    "LoadedModel",
    "Wav2Vec2Config",
    "Wav2Vec2Inference",
    "Wav2Vec2Model",
    "load_model",
    "load_pretrained",
    "preset",
]

if TYPE_CHECKING:
    from wav2vec2.alignment import Alignment
    from wav2vec2.config import (
        BASE,
        LARGE,
        LARGE_LV60K,
        PRESETS,
        SMALL,
        Wav2Vec2Config,
        preset,
    )
    from wav2vec2.inference import Transcript, Wav2Vec2Inference
    from wav2vec2.loading import LoadedModel, load_model, load_pretrained
    from wav2vec2.models.wav2vec2 import Wav2Vec2Model


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'wav2vec2' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])

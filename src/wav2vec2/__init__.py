"""wav2vec 2.0 (Baevski et al., 2020) from scratch on PyTorch."""

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

__version__ = "0.1.0"

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

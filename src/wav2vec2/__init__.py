"""wav2vec 2.0 (Baevski et al., 2020) from scratch on PyTorch."""

from wav2vec2.config import (
    BASE,
    LARGE,
    LARGE_LV60K,
    PRESETS,
    SMALL,
    Wav2Vec2Config,
    preset,
)
from wav2vec2.models.wav2vec2 import Wav2Vec2Model

__version__ = "0.1.0"


def load_model(path: str, device: str = "cpu") -> Wav2Vec2Model:
    """Load a model (our directory, a HuggingFace directory or hub id, or a fairseq .pt)
    in eval mode."""
    from wav2vec2.interop.loading import load_model as _load

    return _load(path, device=device)


__all__ = [
    "BASE",
    "LARGE",
    "LARGE_LV60K",
    "PRESETS",
    "SMALL",
    "Wav2Vec2Config",
    "Wav2Vec2Model",
    "load_model",
    "preset",
]

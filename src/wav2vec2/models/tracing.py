"""Whether the model is being traced for export rather than run."""

from __future__ import annotations

import torch


def exporting() -> bool:
    """True while ``torch.onnx.export`` (or ``torch.export``) traces the model: the modules
    then take forms a static graph holds for any batch and length, with the same numbers
    (``wav2vec2.onnx_export``)."""
    return torch.onnx.is_in_onnx_export() or torch.compiler.is_exporting()

"""The machine's fast inference path: what ``--fast`` runs.

Where the hardware multiplies bf16 matrices natively (a CPU with AMX, a CUDA GPU with bf16),
the fast path is PyTorch under bf16 autocast (``--precision bf16``); elsewhere it is ONNX
Runtime with int8 MatMuls (``--backend onnx-int8``). Measured side by side in
docs/benchmarks.md: on a 2-core CPU with AMX, bf16 runs BASE's 10 s at about 3x the speed of
transformers' fp32 and int8 at about 1.5x; on the same kind of CPU without AMX, bf16 matrix
products run at half the fp32 rate, and int8 is the only faster path.
"""

from __future__ import annotations

import torch


def bf16_is_fast(device: str | torch.device) -> bool:
    """Whether bf16 matrix products run well above the fp32 rate on ``device``."""
    dev = torch.device(device)
    if dev.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if dev.type == "cpu":
        amx = getattr(torch.cpu, "_is_amx_tile_supported", None)  # AMX tiles (Sapphire Rapids+)
        return bool(amx and amx() and torch.backends.mkldnn.is_available())
    return False


def fast_path(device: str | torch.device) -> tuple[str, str]:
    """(backend, precision) of ``--fast`` on ``device``."""
    return ("torch", "bf16") if bf16_is_fast(device) else ("onnx-int8", "fp32")

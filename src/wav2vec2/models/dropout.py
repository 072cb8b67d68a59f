"""Dropout that draws a quarter of a random number per element on the CPU.

torch's CPU dropout draws one Bernoulli sample per element (``bernoulli_``, about 6 ns each
on this project's 2-core machine): about 11 % of a bf16 BASE pretraining step, in
transformers as in ours (docs/benchmarks.md). Here one full-range 64-bit random integer is
cut into four 16-bit ones, and an element is kept when its 16-bit number is at least
``round(p * 65536)``. So the drop probability is p rounded to a multiple of 2^-16 (0.1 ->
0.1000061; FlashAttention's dropout rounds to multiples of 1/256), and kept elements are
scaled by ``65536 / (65536 - threshold)``: the output's expectation is exactly the input.
The backward keeps the mask as booleans, a quarter of the float mask of ``F.dropout``.

The numbers come from torch's default generator of the tensor's device, as ``F.dropout``'s
do, so seeding, the trainer's saved RNG state and activation checkpointing's replay work
unchanged. Off the CPU, ``F.dropout`` (fused on CUDA) is used.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

_LEVELS = 1 << 16  # a 16-bit number per element


def keep_mask(shape: torch.Size | tuple[int, ...], p: float, device: torch.device) -> Tensor:
    """Boolean mask, True with probability ``1 - threshold / 65536`` where ``threshold =
    round(p * 65536)``; 4 elements per 64-bit draw."""
    n = 1
    for s in shape:
        n *= s
    words = torch.empty((n + 3) // 4, dtype=torch.int64, device=device)
    words.random_(-(1 << 63), None)  # all 64 bits uniform (the default range leaves the sign 0)
    numbers = words.view(torch.int16)[:n].view(shape)  # uniform on [-32768, 32767]
    return numbers >= _threshold(p) - (1 << 15)


def dropout(x: Tensor, p: float, training: bool = True) -> Tensor:
    """``F.dropout(x, p, training)`` with the mask of :func:`keep_mask` on the CPU."""
    if not training or p == 0.0:
        return x
    _check(p)
    if x.device.type != "cpu":
        return F.dropout(x, p, training=True)
    threshold = _threshold(p)
    if threshold >= _LEVELS:
        return x * 0.0
    scale = _LEVELS / (_LEVELS - threshold)
    # where() keeps only the boolean mask for its backward.
    return torch.where(keep_mask(x.shape, p, x.device), x * scale, 0.0)


def _threshold(p: float) -> int:
    return round(p * _LEVELS)


def _check(p: float) -> None:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability {p} is not in [0, 1]")


class Dropout(nn.Module):
    """``nn.Dropout`` with :func:`dropout` (no parameters or buffers: state dicts are
    unchanged)."""

    def __init__(self, p: float = 0.5):
        super().__init__()
        _check(p)
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        return dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"

"""Convolutional feature encoder f: X -> Z (paper sec. 2).

Seven temporal convolutions turn a 16 kHz waveform into a latent every 20 ms. Valid lengths
travel with the tensors so padded batches stay exact.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wav2vec2.config import FeatureEncoderConfig


class _ChannelLayerNorm(nn.LayerNorm):
    """LayerNorm over the channel axis of a (B, C, T) tensor."""

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


class ConvBlock(nn.Module):
    """Conv1d -> optional norm -> GELU."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, bias: bool, norm: str):
        super().__init__()
        self.kernel, self.stride = kernel, stride
        self.conv = nn.Conv1d(c_in, c_out, kernel, stride=stride, bias=bias)
        nn.init.kaiming_normal_(self.conv.weight)
        self.norm: nn.Module | None
        if norm == "group":  # one group per channel, as fairseq/transformers
            self.norm = nn.GroupNorm(c_out, c_out, affine=True)
        elif norm == "layer":
            self.norm = _ChannelLayerNorm(c_out, elementwise_affine=True)
        else:
            self.norm = None

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(x)
        if self.norm is not None:
            x = self.norm(x)
        return F.gelu(x)


class _GradScale(torch.autograd.Function):
    """Identity forward; multiplies the incoming gradient by ``scale`` (fairseq GradMultiply)."""

    @staticmethod
    def forward(ctx, x: Tensor, scale: float) -> Tensor:  # type: ignore[override]
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        return grad * ctx.scale, None


def scale_grad(x: Tensor, scale: float) -> Tensor:
    return x if scale == 1.0 else _GradScale.apply(x, scale)


class FeatureEncoder(nn.Module):
    """(B, samples) waveform -> (B, C, frames) latents.

    Group norm mode normalizes only the first block (over time, per channel); layer norm mode
    normalizes every block over channels.
    """

    def __init__(self, cfg: FeatureEncoderConfig):
        super().__init__()
        self.cfg = cfg
        blocks, c_in = [], 1
        for i, (c_out, kernel, stride) in enumerate(cfg.conv_layers):
            norm = cfg.norm if (cfg.norm == "layer" or i == 0) else "none"
            blocks.append(ConvBlock(c_in, c_out, kernel, stride, cfg.conv_bias, norm))
            c_in = c_out
        self.blocks = nn.ModuleList(blocks)

    def forward(self, waveforms: Tensor) -> Tensor:
        """waveforms: (B, samples) float -> (B, C, frames)."""
        if waveforms.shape[-1] < self.cfg.receptive_field:
            raise ValueError(
                f"input of {waveforms.shape[-1]} samples is shorter than the receptive "
                f"field ({self.cfg.receptive_field} samples)"
            )
        x = waveforms.unsqueeze(1)  # (B, 1, samples)
        if self.cfg.grad_scale == 0:  # frozen (fairseq feature_grad_mult=0): no graph at all
            with torch.no_grad():
                for block in self.blocks:
                    x = block(x)
            return x
        for block in self.blocks:
            x = block(x)
        # Paper sec. 4.2: the encoder's gradients are scaled (0.1 for BASE) for stability.
        return scale_grad(x, self.cfg.grad_scale) if self.training else x

    def output_lengths(self, lengths: Tensor) -> Tensor:
        """Valid frames for valid sample counts (B,) -> (B,)."""
        return self.cfg.num_frames(lengths)

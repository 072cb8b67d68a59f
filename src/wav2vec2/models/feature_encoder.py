"""Convolutional feature encoder f: X -> Z (paper sec. 2).

Seven temporal convolutions turn a 16 kHz waveform into a latent every 20 ms. Valid lengths
travel with the tensors so padded batches stay exact.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wav2vec2.config import FeatureEncoderConfig
from wav2vec2.models.tracing import exporting


class _ChannelLayerNorm(nn.LayerNorm):
    """LayerNorm over the channel axis of a (B, C, T) tensor."""

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


class MaskedGroupNorm(nn.GroupNorm):
    """GroupNorm with one group per channel over a (B, C, T) tensor, whose statistics (mean
    and variance over time, per channel and row) may cover each row's valid frames only.

    fairseq's and transformers' GroupNorm normalizes over the whole time axis, padding
    included, so zero padding moves every frame of a padded row. Given ``lengths`` (B,)
    valid frames, each row is normalized by the same GroupNorm call as the row alone, over
    its first ``lengths[b]`` frames, and its padded tail is zero. Without lengths, or with
    no row padded, it is ``nn.GroupNorm`` exactly: the same parameters and the same numbers.
    """

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        t = x.shape[-1]
        if lengths is not None and exporting():
            return self._masked(x, lengths)
        if lengths is None or bool((lengths >= t).all()):
            return super().forward(x)
        rows = []
        # One call per row, not masked sums: it holds no (B, C, T) temporaries (block 0 has
        # the encoder's largest output) and is the very computation of a row run alone.
        # A row shorter than the first kernel has no valid frame and yields no output frame
        # at all; normalizing one frame of it keeps the statistics finite.
        for b, n in enumerate(lengths.clamp(1, t).tolist()):
            rows.append(F.pad(super().forward(x[b : b + 1, :, :n]), (0, t - n)))
        return torch.cat(rows)

    def forward_frames(self, y: Tensor, lengths: Tensor | None = None) -> Tensor:
        """The same norm of a frames-major (B, T, C) tensor, to (B, T, C): the statistics
        over time are sums along axis 1, so no (B, C, T) copy is made (a transposing copy of
        the encoder's largest tensor costs more than the norm). Computed in float32 and
        returned in y's dtype; padded frames are zero."""
        b, t, _ = y.shape
        n = torch.full((b,), t, device=y.device) if lengths is None else lengths.clamp(1, t)
        valid = (torch.arange(t, device=y.device)[None, :] < n[:, None])[..., None]  # (B,T,1)
        count = n.to(torch.float32)[:, None, None]
        x = y.float()
        mean = x.masked_fill(~valid, 0.0).sum(1, keepdim=True) / count
        centered = (x - mean).masked_fill(~valid, 0.0)
        var = centered.square().sum(1, keepdim=True) / count
        out = centered * (self.weight * torch.rsqrt(var + self.eps)) + self.bias
        return out.masked_fill(~valid, 0.0).to(y.dtype)

    def _masked(self, x: Tensor, lengths: Tensor) -> Tensor:
        """The same statistics over the valid frames, with no data-dependent branch or loop:
        the form an exported graph (ONNX) can hold for any batch and length. The sums over
        time are batched matmuls with the (B, T, 1) mask, and the affine map is folded into
        one scale and shift, so that the (B, C, T) tensor, the encoder's largest, is read
        few times. The padded tail is not zeroed: no valid frame of a later block reads it
        (see :class:`FeatureEncoder`)."""
        valid = torch.arange(x.shape[-1], device=x.device)[None, :] < lengths[:, None]
        mask = valid.to(x.dtype)[:, :, None]  # (B, T, 1)
        n = lengths.clamp(min=1).to(x.dtype)[:, None, None]
        mean = torch.bmm(x, mask) / n  # (B, C, 1)
        centered = x - mean
        var = torch.bmm(centered.square(), mask) / n
        scale = self.weight[:, None] * torch.rsqrt(var + self.eps)
        return torch.addcmul(self.bias[:, None], centered, scale)


class ConvBlock(nn.Module):
    """Conv1d -> optional norm -> GELU."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, bias: bool, norm: str):
        super().__init__()
        self.kernel, self.stride = kernel, stride
        self.conv = nn.Conv1d(c_in, c_out, kernel, stride=stride, bias=bias)
        nn.init.kaiming_normal_(self.conv.weight)
        self.norm: nn.Module | None
        if norm == "group":  # one group per channel, as fairseq/transformers
            self.norm = MaskedGroupNorm(c_out, c_out, affine=True)
        elif norm == "layer":
            self.norm = _ChannelLayerNorm(c_out, elementwise_affine=True)
        else:
            self.norm = None

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """x: (B, C_in, T_in) -> (B, C_out, T_out). lengths: (B,) valid output frames, for a
        group norm over valid frames only; None normalizes over every frame."""
        if self._foldable(x):
            return F.gelu(self._conv_group_norm_folded(x[:, 0], lengths))
        x = self.conv(x)
        if lengths is not None:
            x = self.norm(x, lengths)
        elif self.norm is not None:
            x = self.norm(x)
        return F.gelu(x)

    def forward_frames(self, y: Tensor, lengths: Tensor | None = None) -> Tensor:
        """The same block on frames-major tensors: y (B, T_in, C_in) -> (B, T_out, C_out).

        The conv is one matrix product: output frame t reads input frames s*t ... s*t+k-1,
        so the k strided slices of y, side by side, are the (B, T_out, k*C_in) patches, and
        the (C_out, C_in, k) kernel laid out as (C_out, k*C_in) multiplies them. The slices
        are concatenated, which autograd undoes by slicing. This is the encoder's form under
        bf16 autocast on the CPU (:meth:`FeatureEncoder.matmul_convs`).
        """
        if self._foldable(y.transpose(1, 2)):
            return F.gelu(self._conv_group_norm_folded(y[..., 0], lengths, frames_major=True))
        k, s = self.kernel, self.stride
        t_out = (y.shape[1] - k) // s + 1
        patches = torch.cat([y[:, j : j + s * (t_out - 1) + 1 : s] for j in range(k)], dim=-1)
        w = self.conv.weight
        y = F.linear(patches, w.permute(0, 2, 1).reshape(w.shape[0], -1), self.conv.bias)
        if isinstance(self.norm, MaskedGroupNorm):
            y = self.norm.forward_frames(y, lengths)
        elif self.norm is not None:  # over channels: the last axis already
            y = F.layer_norm(y, self.norm.normalized_shape, self.norm.weight, self.norm.bias,
                             self.norm.eps)  # fmt: skip
        return F.gelu(y)

    def _foldable(self, x: Tensor) -> bool:
        """The first block of a group-norm encoder, run without gradients (inference, or
        fine-tuning's frozen encoder): its conv and norm fold into one matrix product."""
        return (
            isinstance(self.norm, MaskedGroupNorm)
            and self.norm.num_groups == self.norm.num_channels
            and self.norm.affine
            and x.shape[1] == 1
            and not torch.is_grad_enabled()
            and not exporting()  # the export has its own static form of the norm
        )

    def _conv_group_norm_folded(
        self, wave: Tensor, lengths: Tensor | None, frames_major: bool = False
    ) -> Tensor:
        """GroupNorm(conv(wave)) for a one-channel input, one group per channel, computed
        from the frames' first two moments instead of the (B, C, T) conv output.

        With frames f_t (B, T, K) of the waveform (kernel K, the conv's stride), channel c
        is y_ct = w_c . f_t + b_c. Over a row's valid frames its mean is w_c . m and its
        variance w_c' S w_c, where m and S are the mean and (biased) covariance of f_t, so
        the normalized output is f_t . v_c + (beta_c - v_c . m) with
        v_c = gamma_c w_c / sqrt(w_c' S w_c + eps): one (C, K) x (K, T) product per row,
        no conv over 512 channels and no extra pass over them. The bias cancels. The moments
        are taken in float64, which rounds less than GroupNorm's own statistics; the result
        equals it to float32 rounding (tests/test_layers.py). Padded frames are zero, as
        MaskedGroupNorm leaves them. ``frames_major``: (B, T, C) out rather than (B, C, T).
        """
        b, samples = wave.shape
        k, s = self.kernel, self.stride
        t = (samples - k) // s + 1
        frames = wave.as_strided((b, t, k), (wave.stride(0), s, wave.stride(1)))  # (B, T, K)
        n = torch.full((b,), t, device=wave.device) if lengths is None else lengths.clamp(1, t)
        valid = torch.arange(t, device=wave.device)[None, :] < n[:, None]  # (B, T)
        f64 = frames.double() * valid[..., None]
        count = n.double()[:, None]  # (B, 1)
        mean = f64.sum(1) / count  # (B, K)
        cov = f64.transpose(1, 2) @ f64 / count[..., None] - mean[:, :, None] * mean[:, None, :]
        w = self.conv.weight[:, 0, :].double()  # (C, K)
        var = torch.einsum("ck,bkl,cl->bc", w, cov, w)  # (B, C)
        scale = self.norm.weight.double() / torch.sqrt(var + self.norm.eps)  # (B, C)
        v = scale[..., None] * w  # (B, C, K)
        shift = self.norm.bias.double() - (v @ mean[..., None])[..., 0]  # (B, C)
        dtype = wave.dtype
        if frames_major:  # (B, T, C)
            out = torch.baddbmm(shift.to(dtype)[:, None], frames, v.to(dtype).transpose(1, 2))
            pad = ~valid[..., None]
        else:  # (B, C, T)
            out = torch.baddbmm(shift.to(dtype)[..., None], v.to(dtype), frames.transpose(1, 2))
            pad = ~valid[:, None, :]
        if lengths is not None and bool((n < t).any()):
            out = out.masked_fill(pad, 0.0)
        return out


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
    normalizes every block over channels. With ``cfg.masked_group_norm`` and valid lengths,
    the group norm's statistics skip each row's padding. Only that norm needs lengths: the
    other blocks work frame by frame, and a valid frame of block i reads only valid frames of
    block i-1 (``num_frames`` counts exactly the frames whose receptive field is all valid
    samples), so the padded tail never reaches a valid frame.
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
        self.conv_route = "auto"  # see matmul_convs

    def forward(self, waveforms: Tensor, lengths: Tensor | None = None) -> Tensor:
        """waveforms: (B, samples) float, zero-padded -> (B, C, frames). lengths: (B,) valid
        samples, or None; only a masked group norm uses them."""
        if waveforms.shape[-1] < self.cfg.receptive_field:
            raise ValueError(
                f"input of {waveforms.shape[-1]} samples is shorter than the receptive "
                f"field ({self.cfg.receptive_field} samples)"
            )
        frozen = self.cfg.grad_scale == 0  # fairseq feature_grad_mult=0: no graph at all
        with torch.no_grad() if frozen else contextlib.nullcontext():
            if self.matmul_convs(waveforms):
                x = waveforms.unsqueeze(-1)  # (B, samples, 1)
                x = self.blocks[0].forward_frames(x, self._norm_lengths(lengths))
                for block in self.blocks[1:]:
                    x = block.forward_frames(x)
                x = x.transpose(1, 2)  # (B, C, T), frames-major in memory
            else:
                x = waveforms.unsqueeze(1)  # (B, 1, samples)
                x = self.blocks[0](x, self._norm_lengths(lengths))
                for block in self.blocks[1:]:
                    x = block(x)
        if frozen or not self.training:
            return x
        # Paper sec. 4.2: the encoder's gradients are scaled (0.1 for BASE) for stability.
        return scale_grad(x, self.cfg.grad_scale)

    def matmul_convs(self, waveforms: Tensor) -> bool:
        """Whether the convs run as matrix products over frames-major tensors
        (:meth:`ConvBlock.forward_frames`) rather than as oneDNN convolutions.

        ``self.conv_route`` decides: "conv", "matmul", or "auto" (the default): matrix
        products without gradients under bf16/fp16 autocast on the CPU, where oneDNN's
        channels-first convolutions spend about a third of their time reordering their
        operands, and the products run on AMX (BASE, 10 s, 2 threads: the encoder in
        0.12-0.13 s against 0.19-0.20 s). Measured on the same CPU, the convolutions are
        faster in float32 (0.29 s against 0.36 s) and when training in bf16 (forward and
        backward of 4 x 5 s: 1.28 s against 1.46 s). The results are the same to rounding
        either way (tests/test_model.py).
        """
        if self.conv_route != "auto":
            return self.conv_route == "matmul"
        return (
            waveforms.device.type == "cpu"
            and not torch.is_grad_enabled()
            and torch.is_autocast_enabled("cpu")
            and torch.get_autocast_dtype("cpu") in (torch.bfloat16, torch.float16)
            and not exporting()
        )

    def _norm_lengths(self, lengths: Tensor | None) -> Tensor | None:
        """(B,) valid frames after the first conv, for its group norm; None when the norm
        covers every frame (fairseq's numerics, or no norm that looks along time)."""
        if lengths is None or self.cfg.norm != "group" or not self.cfg.masked_group_norm:
            return None
        return self.cfg.num_frames(lengths, layers=1)

    def output_lengths(self, lengths: Tensor) -> Tensor:
        """Valid frames for valid sample counts (B,) -> (B,)."""
        return self.cfg.num_frames(lengths)

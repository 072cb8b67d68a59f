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
        """The same norm on a frames-major (B, T, C) tensor, computed in float32.

        The statistics are plain sums over time, which on this layout run along contiguous
        memory. GroupNorm's kernel would need (B, C, T): a transposing copy in the forward
        pass and another in the backward pass, with a stride of C = 512 floats, cost more
        than the rest of block 0 (bf16 training, BASE, 4 x 5 s: 0.75 s for the encoder's
        forward and backward against 0.62 s this way). The padded frames of a row with
        ``lengths`` are zero, as in :meth:`forward`."""
        t = y.shape[1]
        y = y.float()
        valid = None
        if lengths is not None and not bool((lengths >= t).all()):
            n = lengths.clamp(1, t)
            valid = (torch.arange(t, device=y.device)[None, :] < n[:, None])[..., None]
            count = n.to(y.dtype)[:, None, None]  # (B, 1, 1)
            mean = (y * valid).sum(1, keepdim=True) / count  # (B, 1, C)
            centered = (y - mean) * valid
            var = centered.square().sum(1, keepdim=True) / count
        else:
            mean = y.mean(1, keepdim=True)
            centered = y - mean
            var = centered.square().mean(1, keepdim=True)
        out = torch.addcmul(self.bias, centered, self.weight * torch.rsqrt(var + self.eps))
        return out if valid is None else out * valid

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

        A contiguous (B, T, C) tensor is the channels-last layout of (B, C, 1, T), so the
        conv runs as a 2-D convolution of height 1 on it with no copy, and oneDNN reorders
        neither the activations nor its output (its channels-first 1-D convolutions do). The
        norms work along the same layout. This is the CPU form of the encoder for inference
        and for bf16 training (:meth:`FeatureEncoder.frames_major`).
        """
        if self._foldable(y.transpose(1, 2)):
            return F.gelu(self._conv_group_norm_folded(y[..., 0], lengths, frames_major=True))
        if isinstance(self.norm, MaskedGroupNorm):
            # oneDNN writes the conv's output frames-major for a one-channel input: the
            # transpose back to (B, T, C) is then a view, and no copy is made
            x = self.conv(y.transpose(1, 2)).transpose(1, 2).contiguous()
            return F.gelu(self.norm.forward_frames(x, lengths))
        x = y.transpose(1, 2).unsqueeze(2)  # (B, C_in, 1, T_in), channels-last in memory
        weight = self.conv.weight.unsqueeze(2).contiguous(memory_format=torch.channels_last)
        x = F.conv2d(x, weight, self.conv.bias, stride=(1, self.stride))
        y = x.squeeze(2).transpose(1, 2)  # (B, T_out, C_out)
        if self.norm is not None:  # a layer norm, over channels: the last axis already
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
        self.conv_route = "auto"  # or "channels" or "frames": see frames_major

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
            if self.frames_major(waveforms):
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

    def frames_major(self, waveforms: Tensor) -> bool:
        """Whether the blocks run on frames-major (B, T, C) tensors, their convs as
        channels-last convolutions (:meth:`ConvBlock.forward_frames`), rather than on
        (B, C, T) tensors with oneDNN's 1-D convolutions, which spend much of their time
        reordering operands to and from channels-last.

        ``self.conv_route`` decides: "channels", "frames", or "auto" (the default): frames
        on the CPU without gradients, or under bf16/fp16 autocast. Measured on a 2-core CPU
        with AMX (BASE's encoder, 2 threads): inference on 10 s took 0.28 s against 0.32 s
        in fp32 and 0.08 s against 0.19 s under bf16 autocast; training on 4 x 5 s (forward
        and backward) 1.13 s against 1.39 s in bf16, but 3.5 s against 2.4 s in fp32, which
        stays channels-first. Both forms compute the same numbers to rounding
        (tests/test_model.py); exports keep the channels-first one.
        """
        if self.conv_route != "auto":
            return self.conv_route == "frames"
        if waveforms.device.type != "cpu" or exporting():
            return False
        half = torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") in (
            torch.bfloat16,
            torch.float16,
        )
        return half or not torch.is_grad_enabled()

    def _norm_lengths(self, lengths: Tensor | None) -> Tensor | None:
        """(B,) valid frames after the first conv, for its group norm; None when the norm
        covers every frame (fairseq's numerics, or no norm that looks along time)."""
        if lengths is None or self.cfg.norm != "group" or not self.cfg.masked_group_norm:
            return None
        return self.cfg.num_frames(lengths, layers=1)

    def output_lengths(self, lengths: Tensor) -> Tensor:
        """Valid frames for valid sample counts (B,) -> (B,)."""
        return self.cfg.num_frames(lengths)

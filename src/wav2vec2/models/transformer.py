"""Context network: convolutional relative positional embedding + Transformer (paper sec. 2).

Post-LN blocks (BASE, LARGE) or pre-LN blocks (LARGE-LV60K) are one flag,
``layer_norm_first``. Attention uses PyTorch's scaled_dot_product_attention with a key
padding mask.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import weight_norm
from torch.utils.checkpoint import checkpoint

from wav2vec2.config import TransformerConfig
from wav2vec2.models.dropout import Dropout, dropout
from wav2vec2.models.tracing import exporting
from wav2vec2.models.weight_cache import WeightCache


class PositionalConvEmbedding(nn.Module):
    """Grouped conv over time, kernel 128 and 16 groups for BASE, with weight norm over the
    kernel axis; its GELU output is added to the input (paper sec. 4.2)."""

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        k = cfg.pos_conv_kernel
        conv = nn.Conv1d(cfg.dim, cfg.dim, k, padding=k // 2, groups=cfg.pos_conv_groups)
        # fairseq's init: normal with std sqrt(4 / (kernel * dim)), zero bias.
        nn.init.normal_(conv.weight, mean=0.0, std=math.sqrt(4.0 / (k * cfg.dim)))
        nn.init.zeros_(conv.bias)
        self.conv = weight_norm(conv, name="weight", dim=2) if cfg.pos_conv_weight_norm else conv
        # An even kernel with padding k//2 yields one extra frame; drop it ("SamePad").
        self.trim = 1 if k % 2 == 0 else 0
        self._frozen: WeightCache[Tensor] = WeightCache()  # weight norm's, without gradients

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, T, D) -> (B, T, D) positional term (not yet added)."""
        if torch.is_grad_enabled() or exporting() or not parametrize.is_parametrized(self.conv):
            y = self.conv(x.transpose(1, 2))
        else:
            y = self.conv._conv_forward(x.transpose(1, 2), self._frozen_weight(), self.conv.bias)
        if self.trim:
            y = y[:, :, : -self.trim]
        return F.gelu(y).transpose(1, 2)

    def _frozen_weight(self) -> Tensor:
        """Weight norm's weight g * v / ||v|| (~5M elements for BASE), computed once for as
        long as neither parameter changes."""
        params = self.conv.parametrizations.weight.parameters()
        return self._frozen.get(params, lambda: self.conv.weight)


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        if dim % heads:
            raise ValueError(f"transformer dim {dim} is not divisible by {heads} heads")
        self.heads, self.dropout = heads, dropout
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)
        # the stacked q/k/v weight and bias, while no gradient is wanted
        self._frozen_qkv: WeightCache[tuple[Tensor, Tensor]] = WeightCache()

    def forward(self, x: Tensor, attn_mask: Tensor | None) -> Tensor:
        """x: (B, T, D); attn_mask: (B, 1, 1, T) bool, True = may attend, or None."""
        b, t, d = x.shape
        h = self.heads
        # One (D, 3D) product instead of three (D, D) ones: a wider matrix runs closer to
        # the machine's peak on a CPU (docs/benchmarks.md). The parameters stay separate, as
        # every checkpoint format stores them.
        if exporting():
            # Three MatMuls in the graph: an int8 export then scales each weight on its own.
            projs = (self.q_proj, self.k_proj, self.v_proj)
            q, k, v = (p(x).view(b, t, h, d // h).transpose(1, 2) for p in projs)
        else:
            weight, bias = self._qkv_weights()
            qkv = F.linear(x, weight, bias).view(b, t, 3, h, d // h)
            q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, H, T, D/H)
        if attn_mask is not None and exporting():
            # A boolean mask exports as a softmax with a NaN guard (Where, IsNaN) over the
            # (B, H, T, T) scores; the additive form is the same numbers without it.
            blocked = torch.finfo(x.dtype).min
            attn_mask = x.new_zeros(attn_mask.shape).masked_fill(~attn_mask, blocked)
        y = attend(q, k, v, attn_mask, self.dropout if self.training else 0.0)
        return self.out_proj(y.transpose(1, 2).reshape(b, t, d))

    def _qkv_weights(self) -> tuple[Tensor, Tensor]:
        """(3D, D) weight and (3D,) bias of q, k and v stacked: built every forward while
        gradients flow through them, kept while none are wanted."""
        projs = (self.q_proj, self.k_proj, self.v_proj)

        def stack() -> tuple[Tensor, Tensor]:
            return torch.cat([p.weight for p in projs]), torch.cat([p.bias for p in projs])

        if torch.is_grad_enabled():
            return stack()
        params = [t for p in projs for t in (p.weight, p.bias)]
        return self._frozen_qkv.get(params, stack)


def attend(q: Tensor, k: Tensor, v: Tensor, attn_mask: Tensor | None, p: float) -> Tensor:
    """softmax(q k^T / sqrt(d)) v with dropout ``p`` on the attention weights; q, k, v:
    (B, H, T, d), attn_mask (B, 1, 1, T) bool (True = may attend) or None.

    SDPA, except when dropping out on the CPU: there SDPA runs its math path with
    ``bernoulli_`` masks over (B, H, T, T), and the same arithmetic with
    :func:`wav2vec2.models.dropout.dropout` is faster (docs/benchmarks.md)."""
    if p == 0.0 or q.device.type != "cpu":
        return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=p)
    scores = torch.matmul(q * q.shape[-1] ** -0.5, k.transpose(-2, -1))  # (B, H, T, T)
    if attn_mask is not None:
        scores = scores.masked_fill(~attn_mask, float("-inf"))  # no row is fully masked
    weights = dropout(scores.softmax(-1, dtype=torch.float32), p)
    return torch.matmul(weights.to(v.dtype), v)


class FeedForward(nn.Module):
    def __init__(self, dim: int, ffn_dim: int, activation_dropout: float):
        super().__init__()
        self.fc1 = nn.Linear(dim, ffn_dim)
        self.fc2 = nn.Linear(ffn_dim, dim)
        self.activation_dropout = Dropout(activation_dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.activation_dropout(F.gelu(self.fc1(x))))


class EncoderLayer(nn.Module):
    """One Transformer block; ``layer_norm_first`` picks pre-LN over post-LN."""

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.layer_norm_first = cfg.layer_norm_first
        self.attention = SelfAttention(cfg.dim, cfg.heads, cfg.attention_dropout)
        self.attention_norm = nn.LayerNorm(cfg.dim, eps=cfg.layer_norm_eps)
        self.feed_forward = FeedForward(cfg.dim, cfg.ffn_dim, cfg.activation_dropout)
        self.final_norm = nn.LayerNorm(cfg.dim, eps=cfg.layer_norm_eps)
        self.dropout = Dropout(cfg.dropout)

    def forward(self, x: Tensor, attn_mask: Tensor | None) -> Tensor:
        if self.layer_norm_first:
            x = x + self.dropout(self.attention(self.attention_norm(x), attn_mask))
            return x + self.dropout(self.feed_forward(self.final_norm(x)))
        x = self.attention_norm(x + self.dropout(self.attention(x, attn_mask)))
        return self.final_norm(x + self.dropout(self.feed_forward(x)))


class TransformerEncoder(nn.Module):
    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.cfg = cfg
        self.pos_conv = PositionalConvEmbedding(cfg)
        # Post-LN: normalizes the block input. Pre-LN: normalizes the last block's output.
        self.layer_norm = nn.LayerNorm(cfg.dim, eps=cfg.layer_norm_eps)
        self.input_dropout = Dropout(cfg.encoder_input_dropout)
        self.layers = nn.ModuleList(EncoderLayer(cfg) for _ in range(cfg.layers))
        # Set by the trainer once per update (same on every rank): LayerDrop then drops the
        # same blocks in every micro-batch of the update on every rank. None: each forward
        # draws from its own generator.
        self.layerdrop_seed: int | None = None
        # Keep no block's activations for the backward pass; recompute them there (training
        # option: train.activation_checkpointing).
        self.activation_checkpointing = False

    def forward(
        self,
        x: Tensor,
        padding_mask: Tensor | None = None,
        *,
        num_layers: int | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, tuple[Tensor, ...]]:
        """x: (B, T, D); padding_mask: (B, T) bool, True at padded frames.

        Returns the output and the hidden states: entry 0 is the input to the first block,
        entry i the raw output of block i. For pre-LN models the output is the last block's
        after the final LayerNorm, and the last hidden state is before it (the convention of
        fairseq's layer_results and of transformers >= 5). ``num_layers`` stops after that
        many blocks (inference only).
        """
        attn_mask = None
        if padding_mask is not None and not exporting() and not bool(padding_mask.any()):
            # No row is padded: attending without a mask is the same computation, and it
            # lets SDPA pick its flash kernel on CUDA (which takes no mask).
            padding_mask = None
        if padding_mask is not None:
            x = x.masked_fill(padding_mask[..., None], 0.0)
            attn_mask = ~padding_mask[:, None, None, :]  # (B, 1, 1, T)
        x = x + self.pos_conv(x)
        if not self.cfg.layer_norm_first:
            x = self.layer_norm(x)
        x = self.input_dropout(x)
        hidden = [x]
        stop = len(self.layers) if num_layers is None else num_layers
        for i, layer in enumerate(self.layers[:stop]):
            # LayerDrop (Fan et al. 2019): skip whole blocks at random while training.
            if self._dropped(i, generator):
                if torch.is_grad_enabled():
                    # Every parameter still gets a gradient (zero), so DDP needs no
                    # find_unused_parameters: it costs one element per tensor.
                    x = x + 0.0 * torch.stack([p.view(-1)[0] for p in layer.parameters()]).sum()
                hidden.append(x)
                continue
            if self.activation_checkpointing and self.training and torch.is_grad_enabled():
                # The RNG state is replayed, so dropout draws the same masks both times.
                x = checkpoint(layer, x, attn_mask, use_reentrant=False)
            else:
                x = layer(x, attn_mask)
            hidden.append(x)
        if self.cfg.layer_norm_first and stop == len(self.layers):
            x = self.layer_norm(x)
        return x, tuple(hidden)

    def dropped_blocks(self) -> list[int]:
        """The blocks LayerDrop skips in this update (``layerdrop_seed`` set, training)."""
        if self.layerdrop_seed is None:
            return []
        return [i for i in range(len(self.layers)) if self._dropped(i, None)]

    def _dropped(self, i: int, generator: torch.Generator | None) -> bool:
        """Whether LayerDrop skips block ``i`` in this forward: drawn from
        ``layerdrop_seed`` when it is set (the same blocks for every micro-batch and rank of
        an update), else from ``generator``."""
        if not self.training or self.cfg.layerdrop <= 0:
            return False
        if self.layerdrop_seed is None:
            return torch.rand((), generator=generator).item() < self.cfg.layerdrop
        gen = torch.Generator().manual_seed(self.layerdrop_seed)
        return bool(torch.rand(len(self.layers), generator=gen)[i] < self.cfg.layerdrop)

"""Span masking of time steps and channels, with fairseq's ``compute_mask_indices`` semantics.

Everything runs in torch from an explicit ``torch.Generator`` so masks are reproducible and
can be handed to another implementation (e.g. transformers) for parity tests.
``sample_masks`` is the one place the model's masking config becomes masks, for pretraining
and for fine-tuning alike.
"""

from __future__ import annotations

import torch
from torch import Tensor

from wav2vec2.config import MaskingConfig


def _num_spans(size: int, prob: float, length: int, min_masks: int, gen: torch.Generator) -> int:
    # fairseq: int(mask_prob * sz / mask_length + U[0, 1)), i.e. probabilistic rounding.
    u = torch.rand((), generator=gen).item()
    return max(min_masks, int(prob * size / float(length) + u))


def _overlapping_spans(size: int, num: int, length: int, gen: torch.Generator) -> Tensor:
    """Starts drawn without replacement; spans may overlap (fairseq's default)."""
    min_len = length
    if size - min_len <= num:
        min_len = size - num - 1  # fairseq shrinks the start range for very short inputs
    high = max(size - min_len, 1)
    starts = torch.randperm(high, generator=gen)[: min(num, high)]
    idx = (starts[:, None] + torch.arange(length)[None, :]).flatten()
    return torch.unique(idx[idx < size])


def _non_overlapping_spans(
    size: int, num: int, length: int, min_space: int, gen: torch.Generator
) -> Tensor:
    """fairseq's no_overlap mode: place spans one by one in the free parts, chosen with
    probability proportional to their room, keeping ``min_space`` free steps between spans."""
    parts = [(0, size)]
    chosen: list[int] = []
    for _ in range(num):
        room = torch.tensor(
            [e - s if e - s >= length + min_space else 0 for s, e in parts], dtype=torch.float
        )
        if room.sum() <= 0:
            break
        s, e = parts.pop(int(torch.multinomial(room, 1, generator=gen)))
        start = int(torch.randint(s, e - length, (), generator=gen))
        chosen.extend(range(start, start + length))
        if start - s - min_space >= length:
            parts.append((s, start - min_space + 1))
        if e - start - length - min_space > length:
            parts.append((start + length + min_space, e))
    return torch.tensor(sorted(chosen), dtype=torch.long)


def compute_span_mask(
    shape: tuple[int, int],
    prob: float,
    length: int,
    *,
    valid_lengths: Tensor | None = None,
    min_masks: int = 0,
    no_overlap: bool = False,
    min_space: int = 0,
    require_same_masks: bool = False,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Boolean (B, T) mask of spans of ``length`` steps.

    For each row of valid size ``sz``, ``int(prob * sz / length + U)`` span starts (at least
    ``min_masks``) are drawn. Padding (beyond ``valid_lengths``) is never masked. With
    ``require_same_masks`` every row is trimmed at random to the smallest row's count, as
    fairseq does in pretraining.
    """
    gen = generator if generator is not None else torch.default_generator
    bsz, total = shape
    sizes = [total] * bsz if valid_lengths is None else [int(n) for n in valid_lengths]
    rows: list[Tensor] = []
    for sz in sizes:
        num = _num_spans(sz, prob, length, min_masks, gen) if prob > 0 else 0
        if num == 0 or sz <= 1:
            rows.append(torch.empty(0, dtype=torch.long))
        elif no_overlap:
            rows.append(_non_overlapping_spans(sz, num, min(length, sz - 1), min_space, gen))
        else:
            rows.append(_overlapping_spans(sz, num, min(length, sz - 1), gen))
    mask = torch.zeros(bsz, total, dtype=torch.bool)
    smallest = min((len(r) for r in rows), default=0)
    for i, idx in enumerate(rows):
        if require_same_masks and len(idx) > smallest:
            idx = idx[torch.randperm(len(idx), generator=gen)[:smallest]]
        mask[i, idx] = True
    return mask


def sample_masks(
    cfg: MaskingConfig,
    batch: int,
    frames: int | None,
    channels: int | None,
    *,
    frame_lengths: Tensor | None = None,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> tuple[Tensor | None, Tensor | None]:
    """(time mask (B, frames), channel mask (B, channels)) on ``device``.

    frames / channels: the sizes to mask, or None to draw no such mask (pretraining given a
    time mask; a model not training draws no channel mask). frame_lengths: (B,) valid frames,
    None when no row is padded. A mask whose probability is 0 is None too: fairseq then
    applies none at all, not even ``*_min_masks`` spans. The time mask is drawn first, then the
    channel mask: that order is part of the generator's stream, so it must not change.
    """
    time = channel = None
    if frames is not None and cfg.time_prob > 0:
        time = compute_span_mask(
            (batch, frames),
            cfg.time_prob,
            cfg.time_length,
            valid_lengths=frame_lengths,
            min_masks=cfg.time_min_masks,
            no_overlap=cfg.time_no_overlap,
            min_space=cfg.time_min_space,
            require_same_masks=cfg.require_same_masks,
            generator=generator,
        ).to(device)
    if channels is not None and cfg.channel_prob > 0:
        channel = compute_span_mask(
            (batch, channels),
            cfg.channel_prob,
            cfg.channel_length,
            min_masks=cfg.channel_min_masks,
            no_overlap=cfg.channel_no_overlap,
            min_space=cfg.channel_min_space,
            generator=generator,
        ).to(device)
    return time, channel

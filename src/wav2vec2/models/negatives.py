"""Distractor sampling for the contrastive task (paper sec. 3.2).

For every masked step, K distractors are drawn uniformly from the *other* masked steps of
the same utterance (fairseq's ``sample_negatives`` with cross_sample_negatives=0). Unlike
fairseq, utterances may have different numbers of masked steps.
"""

from __future__ import annotations

import torch
from torch import Tensor


def sample_negatives(
    mask: Tensor, num_negatives: int, generator: torch.Generator | None = None
) -> Tensor:
    """mask: (B, T) bool -> (M, K) long indices into the M masked steps in row-major order.

    Row m never contains m itself, except when its utterance has a single masked step (then
    there is no other choice; the loss masks such distractors out because they equal the
    positive).
    """
    counts = mask.sum(dim=1)  # (B,) masked steps per utterance
    offsets = torch.cumsum(counts, 0) - counts  # (B,) first masked index of each utterance
    utt = torch.repeat_interleave(torch.arange(mask.shape[0], device=mask.device), counts)
    m = utt.numel()
    local = torch.arange(m, device=mask.device) - offsets[utt]  # (M,) index within utterance
    n = counts[utt]  # (M,)
    u = torch.rand(m, num_negatives, generator=generator, device=mask.device)
    # Uniform over the n-1 other steps: draw from [0, n-2], then skip over the step itself.
    draw = (u * (n - 1).clamp(min=1)[:, None]).long()
    draw = torch.minimum(draw, (n - 2).clamp(min=0)[:, None])
    draw = draw + (draw >= local[:, None]).long()
    draw = torch.where((n > 1)[:, None], draw, local[:, None])
    return offsets[utt][:, None] + draw


def to_flat_time_indices(mask: Tensor, negatives: Tensor) -> Tensor:
    """Convert (M, K) masked-step indices into transformers' layout: a (B, T, K) array of
    indices into the flattened (B*T) sequence, zero at unmasked steps."""
    bsz, total = mask.shape
    positions = mask.flatten().nonzero().squeeze(1)  # (M,) flat index of each masked step
    out = torch.zeros(bsz * total, negatives.shape[1], dtype=torch.long, device=mask.device)
    out[positions] = positions[negatives]
    return out.view(bsz, total, -1)

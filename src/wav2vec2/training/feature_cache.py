"""Fine-tuning's frozen feature encoder, run once per batch: its output kept across epochs.

A feature encoder that does not train (``feature_encoder.grad_scale`` 0, the fine-tuning
recipes' setting) is a fixed function of the padded waveforms and their lengths: it has no
dropout (``dropout_input`` comes after it, as in fairseq), draws nothing at random, and
computes the same in train and eval mode; SpecAugment's masks are applied after it. So its
output for a batch can be kept and handed back (``Wav2Vec2Model.encode(latents=...)``) the
next time the same batch comes, instead of running the seven convolutions again.

The key is the batch's content: a digest of its waveforms' bytes, their lengths and shape.
A hit returns the very tensor the encoder computed for the same input, so training with the
cache is bit-identical to training without it (``tests/training/test_feature_cache.py``).
It is per batch, not per utterance, because a row's output may depend on the rest of the
batch: a group-norm encoder (BASE) normalizes over a row's padding too (fairseq's numerics,
unless ``masked_group_norm``), and so depends on the batch's width.

The same batches do come back each epoch when nothing changes the audio. Fine-tuning never
crops (utterances longer than ``max_sample_size`` are dropped, the collater pads), loading
and ``normalize`` are deterministic, and the sampler's batches follow from the sorted sizes:
each epoch only reorders them, and regroups items of exactly tied size (such a regrouped
batch is a new key, a miss). Speed perturbation changes the audio every epoch, so with it
there is no cache (``for_run``): every batch would miss and fill memory to no use.

Memory: at most ``train.feature_cache_mib`` MiB of host memory per process; batches that do
not fit are computed every time, and the first such is logged once. BASE keeps 100 KiB per
second of padded audio (512 channels x 50 frames x 4 bytes), so 1024 MiB hold about 2.9 h.
The cache is never saved: a resumed run starts with it empty, with the same results.
"""

from __future__ import annotations

import hashlib
import logging

import torch
from torch import Tensor

from wav2vec2.models.feature_encoder import FeatureEncoder
from wav2vec2.training.config import RunConfig

log = logging.getLogger("wav2vec2")

MIB = 2**20


class FeatureCache:
    """The frozen feature encoder's output (B, C, T) per batch content, up to a byte budget."""

    def __init__(self, budget_mib: int):
        if budget_mib <= 0:
            raise ValueError(f"the feature cache needs a positive budget, got {budget_mib} MiB")
        self.budget = budget_mib * MIB  # bytes
        self._entries: dict[bytes, Tensor] = {}
        self.bytes = 0  # kept
        self.hits = 0
        self.misses = 0
        self.left_out = 0  # misses that did not fit in the budget
        self._said_full = False

    def latents(self, encoder: FeatureEncoder, waveforms: Tensor, lengths: Tensor | None) -> Tensor:
        """``encoder(waveforms, lengths)``, kept from an earlier call with the same input when
        there was one. waveforms: (B, samples) zero-padded; lengths: (B,) valid samples, or
        None (every row full)."""
        if encoder.cfg.grad_scale != 0:
            raise ValueError("only a frozen feature encoder's output (grad_scale 0) can be kept")
        key = _digest(waveforms, lengths)
        kept = self._entries.get(key)
        if kept is not None:
            self.hits += 1
            return kept.to(waveforms.device, non_blocking=True)
        self.misses += 1
        latents = encoder(waveforms, lengths)  # (B, C, T); no graph: the encoder is frozen
        size = latents.numel() * latents.element_size()
        if self.bytes + size <= self.budget:
            self._entries[key] = latents.detach().cpu()
            self.bytes += size
        else:
            self.left_out += 1
            if not self._said_full:
                self._said_full = True
                log.warning(
                    "feature cache full (train.feature_cache_mib=%d): batches that do not fit "
                    "run the feature encoder every epoch",
                    self.budget // MIB,
                )
        return latents

    def summary(self) -> str:
        """One line for the end of a run."""
        return (
            f"feature cache: {self.hits} of {self.hits + self.misses} batches reused, "
            f"{len(self._entries)} kept ({self.bytes / MIB:.1f} of {self.budget // MIB} MiB)"
            + (f", {self.left_out} did not fit" if self.left_out else "")
        )


def off_reason(run: RunConfig) -> str | None:
    """Why a run keeps no feature cache, or None when it does."""
    if run.train.feature_cache_mib == 0:
        return "train.feature_cache_mib is 0"
    if run.task != "finetune":
        return "pretraining crops each utterance at a new offset every epoch"
    if run.model.feature_encoder.grad_scale != 0:
        return "the feature encoder trains (feature_encoder.grad_scale > 0)"
    if any(f != 1.0 for f in run.train.data.speed_perturb):
        return "speed perturbation changes the audio every epoch"
    return None


def for_run(run: RunConfig) -> FeatureCache | None:
    """A cache for ``run`` when reusing the encoder's output is exact and useful, else None."""
    reason = off_reason(run)
    if reason is not None:
        log.info("feature cache off: %s", reason)
        return None
    return FeatureCache(run.train.feature_cache_mib)


def _digest(waveforms: Tensor, lengths: Tensor | None) -> bytes:
    """A 128-bit digest of the batch's exact content: shape, dtype, samples and lengths.
    It reads the waveforms once, far less work than the encoder's first convolution."""
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{tuple(waveforms.shape)} {waveforms.dtype} {lengths is None}".encode())
    h.update(waveforms.detach().cpu().contiguous().view(torch.uint8).numpy())
    if lengths is not None:
        h.update(lengths.detach().cpu().to(torch.int64).contiguous().numpy())
    return h.digest()

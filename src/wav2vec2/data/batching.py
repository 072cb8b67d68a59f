"""Items to batches: crop to the shortest (pretraining) or pad to the longest (fine-tuning).

fairseq semantics (``RawAudioDataset.collater``): with ``pad=False`` every waveform is cropped
at a random offset to the shortest one in the batch, so there is no padding and no
padding mask; with ``pad=True`` waveforms are zero-padded to the longest and ``lengths`` say
how many samples are real. The sampler puts items of similar length together, so either way
little audio is wasted.

Crop offsets come from a generator seeded by ``(seed, epoch, index)``, never from a
worker-global RNG, so a batch is the same whichever worker builds it and after a resume.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

log = logging.getLogger(__name__)

TARGET_PAD = -100  # transformers' label padding; CTC reads target_lengths, not this value
# Bad files named in warnings per collater (so per worker process); each is named once. A
# corpus whose every file is missing would otherwise print one line per file per epoch.
WARN_LIMIT = 20


@dataclass(frozen=True)
class Item:
    """One loaded utterance, or a marker for a file that could not be used.

    ``wave`` is None for a bad file; ``error`` then says why (one line, naming the file).
    """

    index: int  # dataset index
    epoch: int
    path: str
    wave: Tensor | None  # (samples,) float32 at the dataset's sample rate
    target: Tensor | None = None  # (letters,) long label ids, or None without labels
    error: str | None = None


@dataclass(frozen=True)
class Batch:
    """A collated batch.

    waveforms: (B, S) float32, zero-padded after ``lengths[b]`` samples.
    lengths: (B,) long, real samples per row (all ``S`` when cropped).
    indices: (B,) long, dataset indices of the rows.
    targets: (B, L) long label ids padded with -100, or None without labels.
    target_lengths: (B,) long, or None without labels.
    dropped: paths of bad files left out of this batch.
    """

    waveforms: Tensor
    lengths: Tensor
    indices: Tensor
    targets: Tensor | None = None
    target_lengths: Tensor | None = None
    dropped: tuple[str, ...] = ()

    def __len__(self) -> int:
        return self.waveforms.shape[0]

    @property
    def num_samples(self) -> int:
        """Real (unpadded) audio samples in the batch."""
        return int(self.lengths.sum())

    @property
    def padding_fraction(self) -> float:
        """Share of ``waveforms`` that is padding, in [0, 1)."""
        total = self.waveforms.numel()
        return 0.0 if total == 0 else 1.0 - self.num_samples / total

    @property
    def is_padded(self) -> bool:
        """False when every row is full length (then the model needs no lengths)."""
        return bool((self.lengths < self.waveforms.shape[1]).any())

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        return self._map(lambda t: t.to(device, non_blocking=non_blocking))

    def pin_memory(self) -> Batch:
        """Called by the DataLoader when ``pin_memory=True``."""
        return self._map(lambda t: t.pin_memory())

    def _map(self, fn) -> Batch:
        tensors = {
            f.name: None if getattr(self, f.name) is None else fn(getattr(self, f.name))
            for f in dataclasses.fields(self)
            if f.name != "dropped"
        }
        return dataclasses.replace(self, **tensors)


@dataclass(frozen=True)
class SkippedBatch:
    """What the collater returns in place of a batch whose every item was bad: the reasons
    travel with it (from a worker process too), so a run that can read nothing can say why."""

    errors: tuple[str, ...]  # one line per item, naming the file


@dataclass(frozen=True)
class Collater:
    """``collate_fn`` for the DataLoader: list of :class:`Item` -> :class:`Batch`, or a
    :class:`SkippedBatch` when every item is bad (the trainer skips that step).

    Bad items are dropped with a one-line warning naming the file (logged by the process that
    collates, a worker when ``num_workers > 0``; each file once, at most ``WARN_LIMIT``) and
    listed in ``Batch.dropped``.
    """

    pad: bool  # False: crop to the shortest (pretraining); True: pad to the longest
    seed: int
    _warned: set[str] = field(default_factory=set, compare=False, repr=False)

    def __call__(self, items: list[Item]) -> Batch | SkippedBatch:
        good = [it for it in items if it.wave is not None]
        bad = [it for it in items if it.wave is None]
        for it in bad:
            self._warn(it)
        if not good:
            return SkippedBatch(tuple(it.error or it.path for it in bad))
        dropped = tuple(it.path for it in bad)
        sizes = [int(it.wave.shape[0]) for it in good]
        width = max(sizes) if self.pad else min(sizes)
        waveforms = torch.zeros(len(good), width, dtype=torch.float32)
        for row, (it, size) in enumerate(zip(good, sizes)):
            if size > width:
                start = crop_offset(self.seed, it.epoch, it.index, size - width, stream=1)
                waveforms[row] = it.wave[start : start + width]
            else:
                waveforms[row, :size] = it.wave
        lengths = torch.tensor([min(s, width) for s in sizes], dtype=torch.long)
        indices = torch.tensor([it.index for it in good], dtype=torch.long)
        targets = target_lengths = None
        if good[0].target is not None:
            target_lengths = torch.tensor([len(it.target) for it in good], dtype=torch.long)
            targets = torch.full((len(good), int(target_lengths.max())), TARGET_PAD)
            for row, it in enumerate(good):
                targets[row, : len(it.target)] = it.target
        return Batch(waveforms, lengths, indices, targets, target_lengths, dropped)

    def _warn(self, item: Item) -> None:
        # A bad file stays bad: name it the first time only (every epoch reads it again).
        if item.path in self._warned or len(self._warned) > WARN_LIMIT:
            return
        self._warned.add(item.path)
        if len(self._warned) > WARN_LIMIT:
            log.warning("more bad audio files are being skipped; only the first %d are named",
                        WARN_LIMIT)  # fmt: skip
        else:
            log.warning("skipping bad audio file: %s", item.error or item.path)


def crop_offset(seed: int, epoch: int, index: int, slack: int, stream: int = 0) -> int:
    """A start offset in ``[0, slack]`` drawn from ``(seed, epoch, index, stream)`` alone.

    ``stream`` separates the dataset's crop to ``max_sample_size`` (0) from the collater's
    crop to the batch's shortest item (1) and the dataset's choice of speed factor (2), so
    the draws are independent.
    """
    if slack <= 0:
        return 0
    rng = np.random.default_rng([seed, epoch, index, stream])
    return int(rng.integers(0, slack + 1))

"""The DataLoader: worker processes load and collate while the model trains.

The epoch travels with every index (the sampler's lists become ``[(index, epoch), ...]``), so
workers need no shared state: persistent workers, a fresh iterator after a resume, and any
worker/batch assignment all see the right epoch and so draw the same crops.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator

import torch
from torch.utils.data import DataLoader

from wav2vec2.data.batching import Batch, Item, SkippedBatch
from wav2vec2.data.dataset import AudioDataset
from wav2vec2.data.sampler import BucketBatchSampler


class EpochBatchSampler:
    """Wraps a :class:`BucketBatchSampler`: yields ``[(index, epoch), ...]`` per batch."""

    def __init__(self, sampler: BucketBatchSampler) -> None:
        self.sampler = sampler

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        epoch = self.sampler.epoch
        for batch in self.sampler:
            yield [(i, epoch) for i in batch]

    def __len__(self) -> int:
        return len(self.sampler)


def build_loader(
    dataset: AudioDataset,
    sampler: BucketBatchSampler,
    *,
    num_workers: int,
    collate: Callable[[list[Item]], Batch | SkippedBatch] | None = None,
    prefetch_factor: int = 2,
    pin_memory: bool | None = None,
) -> DataLoader:
    """A DataLoader over ``sampler``'s batches of ``dataset``, yielding ``Batch`` or
    ``SkippedBatch``.

    Each ``iter(loader)`` covers the sampler's current epoch from its saved position; call
    ``sampler.set_epoch`` between epochs and ``sampler.advance()`` per consumed batch.
    A ``SkippedBatch`` comes back for a batch whose files were all bad: skip it (but still
    advance).

    Args:
        num_workers: loader processes (0 loads in this process, for debugging).
        collate: defaults to ``dataset.collater()``.
        prefetch_factor: batches each worker prepares ahead.
        pin_memory: defaults to True when CUDA is available (faster host-to-GPU copies).
    """
    if pin_memory is None:
        pin_memory = torch.cuda.is_available()
    workers = num_workers > 0
    # fork starts workers fast and shares the manifest's memory copy-on-write; workers
    # never touch CUDA, so forking a process that has initialized it is safe.
    context = None
    if workers and "fork" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("fork")
    return DataLoader(
        dataset,
        batch_sampler=EpochBatchSampler(sampler),
        num_workers=num_workers,
        collate_fn=collate if collate is not None else dataset.collater(),
        pin_memory=pin_memory,
        persistent_workers=workers,
        prefetch_factor=prefetch_factor if workers else None,
        multiprocessing_context=context,
    )

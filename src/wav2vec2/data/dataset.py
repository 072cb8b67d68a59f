"""A fairseq manifest as a map-style dataset of 16 kHz mono waveforms (and letter labels).

Sizes: the manifest stores each file's frame count at its own rate, as fairseq does. Batching
needs lengths at ``sample_rate``, so a few headers are probed at construction; if any file is
at another rate, all headers are read and sizes converted. Sizes stay approximate (resampling
may shift a length by a sample or two, a file may have changed): loading always uses the real
length.

Filtering at construction (counted in :attr:`AudioDataset.skipped` and logged, as fairseq
logs "loaded N, skipped M"): items shorter than ``min_sample_size`` or than the model's
receptive field; with labels, items longer than ``max_sample_size`` (fine-tuning never crops,
it would cut audio away from its transcript) and label lines with letters outside the
vocabulary.

Bad files at training time (unreadable, empty, too short after resampling, non-finite samples)
never raise in a worker: ``__getitem__`` returns an :class:`Item` with ``wave=None`` and the
collater drops it with a warning.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from wav2vec2.audio import SAMPLE_RATE, audio_info, check_speed_factors, load_audio, speed_perturb
from wav2vec2.audio import normalize as normalize_wave
from wav2vec2.data.batching import Collater, Item, crop_offset
from wav2vec2.data.manifest import read_labels, read_manifest
from wav2vec2.errors import Wav2Vec2Error
from wav2vec2.vocab import Vocabulary

log = logging.getLogger(__name__)

_PROBES = 8  # headers read to detect a corpus not at the target rate


@dataclass(frozen=True)
class SkipReport:
    """What construction left out of the manifest."""

    too_short: int = 0  # below min_sample_size or min_valid_samples
    too_long: int = 0  # above max_sample_size with labels (fine-tuning never crops)
    bad_labels: tuple[str, ...] = ()  # one line each: "file:line (audio): reason"

    @property
    def total(self) -> int:
        return self.too_short + self.too_long + len(self.bad_labels)


class AudioDataset(Dataset):
    """Items of a ``.tsv`` manifest, loaded as mono float32 at ``sample_rate``.

    Args:
        manifest_path: fairseq manifest (root line, then ``relpath<TAB>frames``).
        sample_rate: every file is resampled to this rate.
        max_sample_size: without labels, longer items are randomly cropped to this many
            samples; with labels, they are dropped instead.
        min_sample_size: shorter items are dropped (fairseq ``min_sample_size``).
        min_valid_samples: the model's receptive field (``feature_encoder.receptive_field``,
            400 samples for the paper's encoder): shorter audio cannot produce one frame;
            dropped at construction and reported as bad at load time.
        normalize: zero mean, unit variance per utterance, before cropping (as fairseq).
        labels_path: ``.ltr`` file with one line per manifest entry (``H E L L O | ...``).
        vocab: maps letters to ids; required with ``labels_path``.
        pad: passed to the collater: pad to the longest (True) or crop to the shortest.
        seed: with epoch and index, fixes every crop offset and speed factor.
        speed_factors: speed perturbation (Ko et al. 2015, Kaldi's 0.9/1.0/1.1): each item,
            each epoch, plays at one of these speeds, drawn from (seed, epoch, index), so
            a resumed run sees the same audio. Empty: off. Sizes (and so ``max_tokens``)
            are those of the manifest: a 0.9 item is 11% longer than its size says.

    ``dataset[i]`` or ``dataset[(i, epoch)]`` returns an :class:`Item`; the DataLoader built
    by :func:`wav2vec2.data.loader.build_loader` passes the epoch with each index.
    """

    def __init__(
        self,
        manifest_path: str | Path,
        *,
        sample_rate: int = SAMPLE_RATE,
        max_sample_size: int | None = None,
        min_sample_size: int = 0,
        min_valid_samples: int,
        normalize: bool = False,
        labels_path: str | Path | None = None,
        vocab: Vocabulary | None = None,
        pad: bool,
        seed: int,
        speed_factors: tuple[float, ...] = (),
    ) -> None:
        if labels_path is not None and vocab is None:
            raise ValueError("labels_path needs a vocab to encode the labels")
        check_speed_factors(speed_factors)
        self.speed_factors = tuple(float(f) for f in speed_factors)
        self.sample_rate = sample_rate
        self.max_sample_size = max_sample_size
        self.min_valid_samples = min_valid_samples
        self.normalize = normalize
        self.pad = pad
        self.seed = seed
        self.epoch = 0  # used for plain integer keys only

        manifest_path = Path(manifest_path)
        root, entries = read_manifest(manifest_path)  # a bad one: Wav2Vec2Error naming the line
        paths = [str(Path(root) / rel) for rel, _ in entries]
        sizes = _sizes_at_rate(paths, [n for _, n in entries], sample_rate)

        labels: list[list[int] | None] = [None] * len(entries)
        bad_labels: list[str] = []
        if labels_path is not None:
            labels, bad_labels = _encode_labels(Path(labels_path), entries, vocab)

        keep: list[int] = []
        too_short = too_long = 0
        for i, size in enumerate(sizes):
            if labels_path is not None and labels[i] is None:
                pass  # counted in bad_labels
            elif size < max(min_sample_size, min_valid_samples):
                too_short += 1
            elif labels_path is not None and max_sample_size is not None and size > max_sample_size:
                too_long += 1
            else:
                keep.append(i)
        self.skipped = SkipReport(too_short, too_long, tuple(bad_labels))
        self.root = root
        self.sizes = np.array([sizes[i] for i in keep], dtype=np.int64)  # (N,) samples
        # Paths and labels live in flat numpy buffers, not lists of Python objects: forked
        # workers share them copy-on-write, whereas refcount updates on a million str/list
        # objects would make every worker copy every page (fairseq uses pyarrow for this).
        names = [np.frombuffer(entries[i][0].encode("utf-8"), np.uint8) for i in keep]
        self._names = _Ragged(names, np.uint8)
        self._labels = None
        if labels_path is not None:
            self._labels = _Ragged([np.array(labels[i], np.int32) for i in keep], np.int32)
        log.info(
            "%s: loaded %d, skipped %d (%d too short, %d too long, %d bad labels)",
            manifest_path, len(keep), self.skipped.total, too_short, too_long, len(bad_labels),
        )  # fmt: skip
        for line in bad_labels:
            log.warning("skipping label: %s", line)

    def __len__(self) -> int:
        return len(self.sizes)

    def path(self, index: int) -> str:
        """Full path of item ``index``."""
        return os.path.join(self.root, self._names[index].tobytes().decode("utf-8"))

    def set_epoch(self, epoch: int) -> None:
        """Epoch for plain integer keys (the loader passes it with each index instead)."""
        self.epoch = epoch

    def collater(self) -> Collater:
        """The matching ``collate_fn``: crop (``pad=False``) or pad, with this seed."""
        return Collater(pad=self.pad, seed=self.seed)

    def __getitem__(self, key: int | tuple[int, int]) -> Item:
        index, epoch = key if isinstance(key, tuple) else (key, self.epoch)
        path = self.path(index)
        target = None
        if self._labels is not None:
            target = torch.from_numpy(self._labels[index].astype(np.int64))
        try:
            wave = load_audio(path, self.sample_rate)
        # A worker must never die on one file: anything the loaders raise becomes a marker.
        except (Wav2Vec2Error, OSError, RuntimeError, ValueError, MemoryError) as exc:
            message = str(exc) if isinstance(exc, Wav2Vec2Error) else f"{path}: {exc!r}"
            return Item(index, epoch, path, None, target, message)
        if len(wave) < self.min_valid_samples:
            return Item(index, epoch, path, None, target, _too_short(path, len(wave), self))
        if not np.isfinite(wave).all():
            return Item(index, epoch, path, None, target, f"{path}: non-finite samples")
        if self.speed_factors:
            pick = crop_offset(self.seed, epoch, index, len(self.speed_factors) - 1, stream=2)
            wave = speed_perturb(wave, self.speed_factors[pick])
        if self.normalize:
            wave = normalize_wave(wave)
        if self._labels is None and self.max_sample_size is not None:
            slack = len(wave) - self.max_sample_size
            start = crop_offset(self.seed, epoch, index, slack, stream=0)
            wave = wave[start : start + self.max_sample_size]
        return Item(index, epoch, path, torch.from_numpy(np.ascontiguousarray(wave)), target)


class _Ragged:
    """A list of 1-d arrays stored as one flat array and offsets."""

    def __init__(self, rows: list[np.ndarray], dtype: type) -> None:
        lengths = np.array([len(r) for r in rows], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(lengths)])  # (N + 1,)
        self.data = np.concatenate(rows).astype(dtype) if rows else np.zeros(0, dtype)

    def __getitem__(self, i: int) -> np.ndarray:
        return self.data[self.offsets[i] : self.offsets[i + 1]]


def _too_short(path: str, n: int, ds: AudioDataset) -> str:
    return f"{path}: too short ({n} samples at {ds.sample_rate} Hz < {ds.min_valid_samples})"


def _sizes_at_rate(paths: list[str], frames: list[int], sample_rate: int) -> list[int]:
    """Manifest frame counts (each file's own rate) -> lengths at ``sample_rate``.

    Probes a few evenly spaced headers; only when one is at another rate are all headers read
    (a 16 kHz corpus, the usual case, costs a handful of reads, not one per file).
    """
    if not paths:
        return []
    probe = sorted({round(k * (len(paths) - 1) / max(_PROBES - 1, 1)) for k in range(_PROBES)})
    if all(_rate(paths[i]) in (None, sample_rate) for i in probe):
        return list(frames)
    log.info("corpus is not all at %d Hz: reading %d headers to convert sizes", sample_rate,
             len(paths))  # fmt: skip
    out = []
    for path, n in zip(paths, frames):
        rate = _rate(path)
        out.append(n if rate in (None, sample_rate) else round(n * sample_rate / rate))
    return out


def _rate(path: str) -> int | None:
    try:
        return audio_info(path)[1]
    except Wav2Vec2Error:
        return None  # a bad file: it keeps its manifest size and is reported when loaded


def _encode_labels(
    path: Path, entries: list[tuple[str, int]], vocab: Vocabulary
) -> tuple[list[list[int] | None], list[str]]:
    """``.ltr`` lines -> ids (None where a letter is not in the vocabulary) and problems.

    Tokens are the space-separated letters, ``|`` included, looked up one by one: the line is
    already in letter form, so ``Vocabulary.encode`` (which takes words) does not apply.
    """
    lines = read_labels(path, len(entries))
    index = vocab.index
    ids: list[list[int] | None] = []
    problems: list[str] = []
    for number, (line, (rel, _)) in enumerate(zip(lines, entries), start=1):
        tokens = line.split()
        missing = sorted({t for t in tokens if t not in index})
        if missing:
            ids.append(None)
            problems.append(
                f"{path}:{number} ({rel}): not in the vocabulary: {' '.join(missing)!r}"
            )
        else:
            ids.append([index[t] for t in tokens])
    return ids, problems

"""Build ``train.tsv`` / ``valid.tsv`` from a directory of audio, as fairseq's
``examples/wav2vec/wav2vec_manifest.py`` does, but deterministic and tolerant of bad files.

- Files are found by a sorted recursive walk, so the same tree and seed give identical files.
- Frame counts come from headers at each file's own rate, as fairseq stores; every file is
  also decoded once, so that corrupt data is found here rather than in the middle of a run.
- Each file goes to valid with probability ``valid_percent / 100`` from ``random.Random(seed)``,
  one draw per candidate file in walk order (fairseq's rule). Bad files draw too, so a file
  turning bad does not move any other file between splits.
- Unreadable, corrupt, empty, and too-short files (under the receptive field at 16 kHz) are
  skipped and listed, never raised.
- Only ``train.tsv`` and ``valid.tsv`` are written, together; a DEST whose ``train`` or
  ``valid`` split has labels (``.wrd``/``.ltr``, an imported corpus) is refused, since a new
  manifest would no longer match them.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from wav2vec2.atomic import atomic_files, check_dir_dest, check_file_dest
from wav2vec2.audio import SAMPLE_RATE, audio_info, load_audio
from wav2vec2.config import FeatureEncoderConfig
from wav2vec2.data.manifest import write_manifest
from wav2vec2.errors import Wav2Vec2Error

DEFAULT_EXTENSIONS = ("flac", "wav")
# Shorter files give no frame: the receptive field of the paper's feature encoder (400
# samples, 25 ms at 16 kHz), which every preset keeps. A manifest is written before any model
# is chosen; the dataset filters again with the model's own receptive field.
MIN_SAMPLES = FeatureEncoderConfig().receptive_field


@dataclass(frozen=True)
class AudioEntry:
    relpath: str  # POSIX path relative to the root
    frames: int  # at the file's own rate (what the manifest stores)
    sample_rate: int

    @property
    def seconds(self) -> float:
        return self.frames / self.sample_rate


@dataclass(frozen=True)
class ManifestReport:
    root: str
    train: tuple[AudioEntry, ...]
    valid: tuple[AudioEntry, ...]
    skipped: tuple[tuple[str, str], ...]  # (relpath, reason)

    @staticmethod
    def hours(entries: Iterable[AudioEntry]) -> float:
        return sum(e.seconds for e in entries) / 3600


def find_audio(root: Path, extensions: Iterable[str]) -> list[Path]:
    """Files under ``root`` whose extension (case-insensitive) is listed, in sorted order.

    Follows directory symlinks, as fairseq's glob does, but visits each real directory once.
    """
    wanted = {"." + e.lower().lstrip(".") for e in extensions}
    found: list[Path] = []
    seen: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:  # a symlink loop or a second link to the same directory
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames.sort()
        found.extend(Path(dirpath, f) for f in filenames if Path(f).suffix.lower() in wanted)
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def probe(path: Path, rel: str) -> AudioEntry | str:
    """One file -> its entry (frames from the header), or the reason it cannot be used."""
    if "\t" in rel or "\n" in rel:
        return "name contains a tab or newline (not representable in a manifest)"
    try:
        frames, rate = audio_info(path)
    except Wav2Vec2Error as exc:
        return str(exc).removeprefix(f"{path}: ")
    if frames <= 0:
        return "empty audio (no samples)"
    if frames * SAMPLE_RATE < MIN_SAMPLES * rate:
        return f"too short ({frames} samples at {rate} Hz < {MIN_SAMPLES} at {SAMPLE_RATE})"
    try:
        samples = len(load_audio(path))  # at 16 kHz, as the model will see it
    except Wav2Vec2Error as exc:  # corrupt data, or samples the loader refuses
        return str(exc).removeprefix(f"{path}: ")
    if samples < MIN_SAMPLES:  # the header promised more than the data holds
        return f"too short once decoded ({samples} samples < {MIN_SAMPLES} at {SAMPLE_RATE})"
    return AudioEntry(rel, frames, rate)


def check_dest(dest: Path) -> None:
    """Refuse a DEST that is a file, holds a folder where a manifest goes, or whose
    train/valid split has labels: a new manifest there would no longer match its
    ``.wrd``/``.ltr`` lines."""
    check_dir_dest(dest)
    for name in ("train.tsv", "valid.tsv"):
        check_file_dest(dest / name)
    labels = [f"{s}{x}" for s in ("train", "valid") for x in (".wrd", ".ltr")]
    found = [name for name in labels if (dest / name).exists()]
    if found:
        raise Wav2Vec2Error(
            f"holds a labeled split ({', '.join(found)}) that a new train.tsv/valid.tsv would "
            "no longer match; give another folder",
            dest,
        )


def build_manifest(
    audio_dir: str | Path,
    dest: str | Path,
    *,
    valid_percent: float,
    extensions: Iterable[str] = DEFAULT_EXTENSIONS,
    seed: int = 42,
    jobs: int = 8,
    progress: Callable[[Iterable], Iterable] | None = None,
) -> ManifestReport:
    """Write ``dest/train.tsv`` and ``dest/valid.tsv`` (together, atomically: a failure leaves
    the earlier pair) and report what went where. DEST is checked first (:func:`check_dest`).

    ``valid_percent`` is a percentage in [0, 100]; 0 writes a valid.tsv holding only the root.
    ``jobs`` threads read headers (I/O bound; helps on network file systems). ``progress``
    wraps the iteration over files (e.g. tqdm).
    """
    if not 0 <= valid_percent <= 100:
        raise Wav2Vec2Error(f"--valid-percent must be in [0, 100], got {valid_percent:g}")
    root = Path(audio_dir).resolve()
    if not root.is_dir():
        raise Wav2Vec2Error("not a directory", audio_dir)
    dest = Path(dest)
    check_dest(dest)
    extensions = tuple(extensions)
    files = find_audio(root, extensions)
    if not files:
        raise Wav2Vec2Error(f"no files with extension {', '.join(extensions)} found", root)
    rels = [f.relative_to(root).as_posix() for f in files]
    with ThreadPoolExecutor(max(1, jobs)) as pool:
        results = pool.map(probe, files, rels)  # keeps walk order
        if progress is not None:
            results = progress(results)
        results = list(results)

    rand = random.Random(seed)
    p = valid_percent / 100
    train: list[AudioEntry] = []
    valid: list[AudioEntry] = []
    skipped: list[tuple[str, str]] = []
    for rel, result in zip(rels, results):
        # fairseq: train if rand.random() > p else valid (p = 0 must mean no valid at all)
        to_valid = rand.random() <= p and p > 0
        if isinstance(result, str):
            skipped.append((rel, result))
        else:
            (valid if to_valid else train).append(result)

    with atomic_files(dest) as stage:
        write_manifest(stage / "train.tsv", root, [(e.relpath, e.frames) for e in train])
        write_manifest(stage / "valid.tsv", root, [(e.relpath, e.frames) for e in valid])
    return ManifestReport(str(root), tuple(train), tuple(valid), tuple(skipped))

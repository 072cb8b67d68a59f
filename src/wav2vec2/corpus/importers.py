"""Import real corpora into the same manifests and labels as the built-in corpus.

- :func:`import_librispeech`: a LibriSpeech-style tree, ``SPEAKER/CHAPTER/*.flac`` with
  ``SPEAKER-CHAPTER.trans.txt`` (``UTTID TRANSCRIPT`` per line).
- :func:`import_tsv`: ``audio/path<TAB>transcript`` lines.

Bad input never stops an import or leaves half a file: each bad utterance (missing or
unreadable audio, audio that is not 16 kHz mono, an empty line or transcript, characters
outside the ``A-Z '`` vocabulary) is skipped and reported, and every output file is written
atomically once its split is complete. ``import-report.txt`` in DEST lists every skip.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import soundfile as sf

from wav2vec2.atomic import write_text_atomic
from wav2vec2.audio import SAMPLE_RATE
from wav2vec2.corpus.normalize import normalize_transcript
from wav2vec2.corpus.writer import ALPHABET
from wav2vec2.data.manifest import (
    letter_counts,
    letters_from_words,
    write_dictionary,
    write_labels,
    write_manifest,
)
from wav2vec2.errors import Wav2Vec2Error

_VALID = re.compile(r"[A-Z']+( [A-Z']+)*")
AUDIO_EXTENSIONS = (".flac", ".wav")
REPORT_NAME = "import-report.txt"


@dataclass
class ImportReport:
    """What an import wrote and what it skipped (and why)."""

    dest: Path
    splits: dict[str, tuple[int, float]] = field(default_factory=dict)  # name -> (utts, hours)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (where, why)

    def skip(self, where: str | Path, why: str) -> None:
        self.skipped.append((str(where), why))

    def render(self, limit: int = 10) -> str:
        lines = [
            f"{name}: {n} utterances, {hours:.2f} h -> {self.dest / name}.tsv"
            for name, (n, hours) in self.splits.items()
        ]
        if self.skipped:
            reasons = Counter(why.split(":")[0] for _, why in self.skipped)
            lines.append(
                f"skipped {len(self.skipped)}: "
                + ", ".join(f"{n} {reason}" for reason, n in reasons.most_common())
            )
            lines += [f"  {where}: {why}" for where, why in self.skipped[:limit]]
            if len(self.skipped) > limit:
                lines.append(f"  ... all listed in {self.dest / REPORT_NAME}")
        return "\n".join(lines)


def check_transcript(text: str) -> str | None:
    """Why a (normalized) transcript cannot be used, or ``None`` when it can."""
    if not text:
        return "empty transcript"
    if not _VALID.fullmatch(text):
        bad = sorted({c for c in text if c != " " and c not in ALPHABET})
        return "characters outside the vocabulary: " + " ".join(repr(c) for c in bad)
    return None


def check_audio(path: Path) -> tuple[int, str | None]:
    """``(num_samples, None)`` for usable 16 kHz mono audio, else ``(0, why)``."""
    if not path.is_file():
        return 0, "missing audio"
    try:
        info = sf.info(str(path))
    except (RuntimeError, OSError, sf.LibsndfileError) as exc:
        return 0, f"unreadable audio: {' '.join(str(exc).split())[:120]}"
    if info.samplerate != SAMPLE_RATE:
        return 0, f"sample rate {info.samplerate} Hz, need {SAMPLE_RATE} (resample first)"
    if info.channels != 1:
        return 0, f"{info.channels} channels, need mono"
    if info.frames <= 0:
        return 0, "empty audio"
    return info.frames, None


@dataclass(frozen=True)
class _Entry:
    relpath: str
    num_samples: int
    words: str


def _write_split(dest: Path, name: str, root: Path, entries: list[_Entry]) -> None:
    write_manifest(dest / f"{name}.tsv", root, [(e.relpath, e.num_samples) for e in entries])
    write_labels(dest / f"{name}.wrd", [e.words for e in entries])
    write_labels(dest / f"{name}.ltr", [letters_from_words(e.words) for e in entries])


def _finish(
    report: ImportReport, splits: dict[str, tuple[Path, list[_Entry]]], source: Path
) -> ImportReport:
    """Write every non-empty split, the dictionary and the report."""
    dest = report.dest
    written = {name: v for name, v in splits.items() if v[1]}
    for name, v in splits.items():
        if not v[1]:
            report.skip(name, "no usable utterances: split not written")
    if not written:
        raise Wav2Vec2Error(
            f"no usable utterances ({len(report.skipped)} skipped, first: "
            f"{report.skipped[0][0] + ': ' + report.skipped[0][1] if report.skipped else 'none'})",
            source,
        )
    dest.mkdir(parents=True, exist_ok=True)
    for name, (root, entries) in written.items():
        _write_split(dest, name, root, entries)
        hours = sum(e.num_samples for e in entries) / SAMPLE_RATE / 3600
        report.splits[name] = (len(entries), hours)
    # Letter counts come from training splits (as fairseq's dict), else from what was imported;
    # an existing dictionary is kept unless this import brings training data.
    train = [e for name, (_, es) in written.items() if name.startswith("train") for e in es]
    if train or not (dest / "dict.ltr.txt").exists():
        pool = train or [e for _, es in written.values() for e in es]
        counts = letter_counts(e.words for e in pool)
        write_dictionary(dest / "dict.ltr.txt", {s: counts.get(s, 0) for s in ALPHABET})
    write_text_atomic(
        dest / REPORT_NAME,
        "".join(f"{where}\t{why}\n" for where, why in report.skipped) or "nothing skipped\n",
    )
    return report


def _librispeech_split(folder: Path, report: ImportReport) -> list[_Entry]:
    entries = []
    for trans in sorted(folder.glob("*/*/*.trans.txt")):
        chapter = trans.parent
        try:
            text = trans.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            report.skip(trans, f"unreadable transcript file: {type(exc).__name__}")
            continue
        listed = set()
        for number, line in enumerate(text.splitlines(), 1):
            where = f"{trans}:{number}"
            if not line.strip():
                report.skip(where, "empty line")
                continue
            uid, _, transcript = line.strip().partition(" ")
            listed.add(uid)
            words = " ".join(transcript.upper().split())
            why = check_transcript(words)
            if why:
                report.skip(where, why)
                continue
            candidates = [chapter / f"{uid}{ext}" for ext in AUDIO_EXTENSIONS]
            audio = next((c for c in candidates if c.exists()), candidates[0])
            samples, why = check_audio(audio)
            if why:
                report.skip(audio, why)
                continue
            entries.append(_Entry(audio.relative_to(folder).as_posix(), samples, words))
        for audio in sorted(chapter.iterdir()):
            if audio.suffix in AUDIO_EXTENSIONS and audio.stem not in listed:
                report.skip(audio, "no transcript line")
    return sorted(entries, key=lambda e: e.relpath)


def import_librispeech(path: str | Path, dest: str | Path, name: str | None = None) -> ImportReport:
    """Import one LibriSpeech split folder, or a folder of them (one manifest per split)."""
    path, dest = Path(path).resolve(), Path(dest).resolve()
    if not path.is_dir():
        raise Wav2Vec2Error("not a folder", path)
    if any(path.glob("*/*/*.trans.txt")):
        folders = {name or path.name: path}
    else:
        folders = {
            child.name: child
            for child in sorted(path.iterdir())
            if child.is_dir() and any(child.glob("*/*/*.trans.txt"))
        }
        if name is not None and folders:
            raise Wav2Vec2Error("--name applies only to a single split folder", path)
    if not folders:
        raise Wav2Vec2Error(
            "no LibriSpeech layout found (expected SPEAKER/CHAPTER/*.trans.txt, "
            "or split folders holding them)",
            path,
        )
    report = ImportReport(dest)
    splits = {split: (f, _librispeech_split(f, report)) for split, f in folders.items()}
    return _finish(report, splits, path)


_HEADER_NAMES = {"path", "audio", "file", "filename", "audio_path", "wav", "audio_filepath"}


def import_tsv(
    tsv: str | Path,
    dest: str | Path,
    name: str = "train",
    audio_root: str | Path | None = None,
    normalize: bool = False,
) -> ImportReport:
    """Import ``audio/path<TAB>transcript`` lines as split ``name``.

    Relative paths start at ``audio_root`` (default: the TSV's folder), which also becomes
    the manifest root. A first line whose path column is a header word is skipped.
    """
    tsv, dest = Path(tsv).resolve(), Path(dest).resolve()
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise Wav2Vec2Error(f"bad split name {name!r}: use letters, digits, '_', '-', '.'")
    try:
        text = tsv.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise Wav2Vec2Error("no such file", tsv) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise Wav2Vec2Error(f"cannot read as UTF-8 text: {type(exc).__name__}", tsv) from exc
    root = Path(audio_root).resolve() if audio_root else tsv.parent
    report = ImportReport(dest)
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        where = f"{tsv}:{number}"
        if not line.strip():
            report.skip(where, "empty line")
            continue
        parts = line.split("\t")
        if number == 1 and parts[0].strip().lower() in _HEADER_NAMES:
            continue
        if len(parts) != 2:
            report.skip(where, f"expected 2 tab-separated fields, got {len(parts)}")
            continue
        audio = (root / parts[0].strip()).resolve()
        words = normalize_transcript(parts[1]) if normalize else " ".join(parts[1].upper().split())
        why = check_transcript(words)
        if why:
            report.skip(where, why)
            continue
        samples, why = check_audio(audio)
        if why:
            report.skip(f"{where} {audio}", why)
            continue
        entries.append(_Entry(os.path.relpath(audio, root), samples, words))
    return _finish(report, {name: (root, entries)}, tsv)

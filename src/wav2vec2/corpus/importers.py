"""Import real corpora into the same manifests and labels as the built-in corpus.

- :func:`import_librispeech`: a LibriSpeech-style tree, ``SPEAKER/CHAPTER/*.flac`` with
  ``SPEAKER-CHAPTER.trans.txt`` (``UTTID TRANSCRIPT`` per line).
- :func:`import_tsv`: ``audio/path<TAB>transcript`` lines.

Bad input never stops an import or leaves half a file: each bad utterance (missing audio,
audio that does not decode to its end, is not 16 kHz mono or is shorter than the encoder's
receptive field, an empty or non-UTF-8 line, an empty transcript, characters outside the
``A-Z '`` vocabulary, a chapter without a transcript file) is skipped and reported, and
an import's files are put in place together once all are written. ``import-report.txt`` in
DEST lists every skip.

What DEST already holds is kept: an existing split is replaced only when asked
(``replace``, ``--replace``), and an existing ``dict.ltr.txt`` is never reordered (a model
fine-tuned on it maps output i to its i-th symbol); symbols it lacks are appended.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import soundfile as sf

from wav2vec2.atomic import atomic_files, check_dir_dest, check_file_dest, write_text_atomic
from wav2vec2.audio import SAMPLE_RATE, load_audio
from wav2vec2.corpus.normalize import normalize_transcript
from wav2vec2.corpus.writer import ALPHABET
from wav2vec2.data.manifest import (
    letter_counts,
    letters_from_words,
    read_dictionary,
    write_dictionary,
    write_labels,
    write_manifest,
)
from wav2vec2.data.manifest_builder import MIN_SAMPLES
from wav2vec2.errors import Wav2Vec2Error

_VALID = re.compile(r"[A-Z']+( [A-Z']+)*")
AUDIO_EXTENSIONS = (".flac", ".wav")
REPORT_NAME = "import-report.txt"
DICT_NAME = "dict.ltr.txt"
SPLIT_SUFFIXES = (".tsv", ".wrd", ".ltr")
JOBS = 8  # threads decoding audio: most of an import's time, and libsndfile frees the GIL


@dataclass
class ImportReport:
    """What an import wrote and what it skipped (and why)."""

    dest: Path
    splits: dict[str, tuple[int, float]] = field(default_factory=dict)  # name -> (utts, hours)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (where, why)
    notes: list[str] = field(default_factory=list)  # other changes to DEST, one line each

    def skip(self, where: str | Path, why: str) -> None:
        self.skipped.append((str(where), why))

    def render(self, limit: int = 10) -> str:
        lines = [
            f"{name}: {n} utterances, {hours:.2f} h -> {self.dest / name}.tsv"
            for name, (n, hours) in self.splits.items()
        ]
        lines += self.notes
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
    """``(num_samples, None)`` for usable audio, else ``(0, why)``. Usable: 16 kHz mono, it
    decodes to its end, and it is at least the encoder's receptive field long. Decoding
    every file costs time here, but finds corrupt data now rather than in the middle of a
    training run or an evaluation."""
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
    try:
        samples = len(load_audio(path))
    except Wav2Vec2Error as exc:  # corrupt data, or samples the loader refuses
        return 0, "cannot decode: " + str(exc).removeprefix(f"{exc.path}: ")
    if samples < MIN_SAMPLES:
        return 0, f"too short: {samples} samples, under the receptive field ({MIN_SAMPLES})"
    return samples, None


@dataclass(frozen=True)
class _Entry:
    relpath: str
    num_samples: int
    words: str


@dataclass(frozen=True)
class _Line:
    """One input line's outcome: skipped for ``why``, or its audio being checked."""

    where: str  # what the report names: the line, or the audio file
    why: str | None = None
    check: Future | None = None  # check_audio's (num_samples, why), computed in a thread
    relpath: str = ""
    words: str = ""


def _collect(lines: Iterable[_Line], report: ImportReport) -> list[_Entry]:
    """The usable entries; every other line goes to the report, in input order."""
    entries = []
    for line in lines:
        samples, why = line.check.result() if line.check is not None else (0, line.why)
        if why:
            report.skip(line.where, why)
        else:
            entries.append(_Entry(line.relpath, samples, line.words))
    return entries


def _check_dest(dest: Path, names: Iterable[str], replace: bool) -> None:
    """Refuse, before any audio is decoded, a DEST that is a file, a folder where one of
    the files goes, or one of the splits already there (unless REPLACE): its labels may be
    what a model was fine-tuned on."""
    check_dir_dest(dest)
    for file in (DICT_NAME, REPORT_NAME, *(f"{n}{s}" for n in names for s in SPLIT_SUFFIXES)):
        check_file_dest(dest / file)
    for name in names if not replace else ():
        found = [f"{name}{s}" for s in SPLIT_SUFFIXES if (dest / f"{name}{s}").exists()]
        if found:
            raise Wav2Vec2Error(
                f"split {name!r} already exists ({', '.join(found)}); import under another "
                "--name or into another folder, or add --replace to replace it",
                dest,
            )


def _write_split(folder: Path, name: str, root: Path, entries: list[_Entry]) -> None:
    write_manifest(folder / f"{name}.tsv", root, [(e.relpath, e.num_samples) for e in entries])
    write_labels(folder / f"{name}.wrd", [e.words for e in entries])
    write_labels(folder / f"{name}.ltr", [letters_from_words(e.words) for e in entries])


def _dictionary(
    dest: Path, written: dict[str, tuple[Path, list[_Entry]]], report: ImportReport
) -> dict[str, int] | None:
    """The letter dictionary to write, or ``None`` to leave DEST's as it is.

    A new one counts letters over the training splits (as fairseq's), else over what was
    imported. An existing one is never reordered or recounted, since a model fine-tuned on
    it maps output i to its i-th symbol: symbols that the new transcripts use and it lacks
    are appended (and reported)."""
    path = dest / DICT_NAME
    imported = [e for _, entries in written.values() for e in entries]
    if not path.exists():
        train = [e for name, (_, es) in written.items() if name.startswith("train") for e in es]
        counts = letter_counts(e.words for e in train or imported)
        return {s: counts.get(s, 0) for s in ALPHABET}
    try:
        existing = read_dictionary(path)
    except (OSError, ValueError) as exc:
        raise Wav2Vec2Error(
            f"cannot read the existing dictionary ({exc}); move it away to have a new one written",
            path,
        ) from None
    used = letter_counts(e.words for e in imported)
    new = [s for s in ALPHABET if used[s] and s not in existing]
    if not new:
        return None
    report.notes.append(
        f"{path}: appended {' '.join(new)} after its {len(existing)} symbols, "
        "whose order is unchanged"
    )
    return {**existing, **{s: used[s] for s in new}}


def _finish(
    report: ImportReport, splits: dict[str, tuple[Path, list[_Entry]]], source: Path
) -> ImportReport:
    """Write every non-empty split, the dictionary and the report, all together."""
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
    dictionary = _dictionary(dest, written, report)
    for name, (_, entries) in written.items():
        hours = sum(e.num_samples for e in entries) / SAMPLE_RATE / 3600
        report.splits[name] = (len(entries), hours)
    with atomic_files(dest) as stage:
        for name, (root, entries) in written.items():
            _write_split(stage, name, root, entries)
        if dictionary is not None:
            keep_order = (dest / DICT_NAME).exists()
            write_dictionary(stage / DICT_NAME, dictionary, keep_order=keep_order)
        write_text_atomic(
            stage / REPORT_NAME,
            "".join(f"{where}\t{why}\n" for where, why in report.skipped) or "nothing skipped\n",
        )
    return report


def _librispeech_chapter(folder: Path, chapter: Path, pool: Executor) -> list[_Line]:
    """The outcome of every line of a chapter's transcript, and of its audio files that no
    line names. A chapter with audio but no transcript file is one reported line: its audio
    cannot be used, and the user should hear of it (a download cut short, a file renamed)."""
    audio_files = sorted(p for p in chapter.iterdir() if p.suffix in AUDIO_EXTENSIONS)
    transcripts = sorted(chapter.glob("*.trans.txt"))
    if not transcripts:
        expected = f"{chapter.parent.name}-{chapter.name}.trans.txt"
        why = f"no transcript file: {len(audio_files)} audio files not imported (no {expected})"
        return [_Line(str(chapter), why)] if audio_files else []
    lines, listed = [], set()
    for trans in transcripts:
        try:
            text = trans.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            return [*lines, _Line(str(trans), f"unreadable transcript file: {type(exc).__name__}")]
        for number, line in enumerate(text.splitlines(), 1):
            where = f"{trans}:{number}"
            if not line.strip():
                lines.append(_Line(where, "empty line"))
                continue
            uid, _, transcript = line.strip().partition(" ")
            listed.add(uid)
            words = " ".join(transcript.upper().split())
            why = check_transcript(words)
            if why:
                lines.append(_Line(where, why))
                continue
            candidates = [chapter / f"{uid}{ext}" for ext in AUDIO_EXTENSIONS]
            audio = next((c for c in candidates if c.exists()), candidates[0])
            relpath = audio.relative_to(folder).as_posix()
            lines.append(_Line(str(audio), None, pool.submit(check_audio, audio), relpath, words))
    lines += [_Line(str(a), "no transcript line") for a in audio_files if a.stem not in listed]
    return lines


def _librispeech_split(folder: Path, report: ImportReport, pool: Executor) -> list[_Entry]:
    chapters = sorted(p for p in folder.glob("*/*") if p.is_dir())
    lines = [line for chapter in chapters for line in _librispeech_chapter(folder, chapter, pool)]
    return sorted(_collect(lines, report), key=lambda e: e.relpath)


def import_librispeech(
    path: str | Path,
    dest: str | Path,
    name: str | None = None,
    replace: bool = False,
    jobs: int = JOBS,
) -> ImportReport:
    """Import one LibriSpeech split folder, or a folder of them (one manifest per split).
    A split already in DEST is refused unless ``replace``."""
    path, dest = Path(path).resolve(), Path(dest).resolve()
    if not path.is_dir():
        raise Wav2Vec2Error("not a folder", path)
    report = ImportReport(dest)
    if any(path.glob("*/*/*.trans.txt")):
        folders = {name or path.name: path}
    else:
        folders = {}
        for child in sorted(p for p in path.iterdir() if p.is_dir()):
            if any(child.glob("*/*/*.trans.txt")):
                folders[child.name] = child
            elif any(p.suffix in AUDIO_EXTENSIONS for p in child.glob("*/*/*")):
                report.skip(child, "no transcript file: split not imported (no chapter has one)")
        if name is not None and folders:
            raise Wav2Vec2Error("--name applies only to a single split folder", path)
    if not folders:
        raise Wav2Vec2Error(
            "no LibriSpeech layout found (expected SPEAKER/CHAPTER/*.trans.txt, "
            "or split folders holding them)",
            path,
        )
    _check_dest(dest, folders, replace)
    with ThreadPoolExecutor(max(1, jobs)) as pool:
        splits = {split: (f, _librispeech_split(f, report, pool)) for split, f in folders.items()}
    return _finish(report, splits, path)


_HEADER_NAMES = {"path", "audio", "file", "filename", "audio_path", "wav", "audio_filepath"}


def import_tsv(
    tsv: str | Path,
    dest: str | Path,
    name: str = "train",
    audio_root: str | Path | None = None,
    normalize: bool = False,
    replace: bool = False,
    jobs: int = JOBS,
) -> ImportReport:
    """Import ``audio/path<TAB>transcript`` lines as split ``name`` (refused if DEST has it,
    unless ``replace``).

    Relative paths start at ``audio_root`` (default: the TSV's folder), which also becomes
    the manifest root. A first line whose path column is a header word is skipped.
    """
    tsv, dest = Path(tsv).resolve(), Path(dest).resolve()
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise Wav2Vec2Error(f"bad split name {name!r}: use letters, digits, '_', '-', '.'")
    try:
        data = tsv.read_bytes()
    except FileNotFoundError:
        raise Wav2Vec2Error("no such file", tsv) from None
    except OSError as exc:
        raise Wav2Vec2Error(f"cannot read ({exc.strerror or exc})", tsv) from None
    if tsv in {dest / f"{name}{suffix}" for suffix in SPLIT_SUFFIXES}:
        raise Wav2Vec2Error(f"is the input: split {name!r} would be written over it", tsv)
    _check_dest(dest, [name], replace)
    root = Path(audio_root).resolve() if audio_root else tsv.parent
    report = ImportReport(dest)
    with ThreadPoolExecutor(max(1, jobs)) as pool:
        entries = _collect(_tsv_lines(data, tsv, root, normalize, pool), report)
    return _finish(report, {name: (root, entries)}, tsv)


def _tsv_lines(
    data: bytes, tsv: Path, root: Path, normalize: bool, pool: Executor
) -> Iterator[_Line]:
    # Lines are decoded one by one, so that one bad byte costs its line, not the import.
    for number, raw in enumerate(data.splitlines(), 1):
        where = f"{tsv}:{number}"
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            bad = f"byte 0x{raw[exc.start]:02x} at column {exc.start + 1}"
            yield _Line(where, f"not UTF-8 text: {bad}")
            continue
        if number == 1:
            line = line.removeprefix("\ufeff")  # the byte-order mark some editors write
        if not line.strip():
            yield _Line(where, "empty line")
            continue
        parts = line.split("\t")
        if number == 1 and parts[0].strip().lower() in _HEADER_NAMES:
            continue
        if len(parts) != 2:
            yield _Line(where, f"expected 2 tab-separated fields, got {len(parts)}")
            continue
        audio = (root / parts[0].strip()).resolve()
        words = normalize_transcript(parts[1]) if normalize else " ".join(parts[1].upper().split())
        why = check_transcript(words)
        if why:
            yield _Line(where, why)
            continue
        check = pool.submit(check_audio, audio)
        yield _Line(f"{where} {audio}", None, check, os.path.relpath(audio, root), words)

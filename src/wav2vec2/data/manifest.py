"""fairseq-compatible manifests, label files and letter dictionaries.

Formats (as fairseq's ``wav2vec_manifest.py`` and ``libri_labels.py`` write them):

- ``SPLIT.tsv``: the root directory (absolute) on the first line, then
  ``relative/path<TAB>num_samples`` per utterance.
- ``SPLIT.wrd``: one upper-case transcript per line, in manifest order.
- ``SPLIT.ltr``: the same as letters separated by spaces, ``|`` between words and at the end:
  ``H E L L O | W O R L D |``.
- ``dict.ltr.txt``: ``SYMBOL COUNT`` per line, most frequent first.

Every writer is atomic: it writes a temporary file beside the target and renames it, so an
interrupted run leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from wav2vec2.atomic import write_text_atomic
from wav2vec2.errors import Wav2Vec2Error
from wav2vec2.textfile import read_lines
from wav2vec2.vocab import WORD_DELIMITER
from wav2vec2.vocab import read_dictionary as read_dictionary  # beside its writer, below


def write_manifest(path: str | Path, root: str | Path, entries: Iterable[tuple[str, int]]) -> None:
    """Write a manifest: ``root`` (made absolute) then one ``relpath<TAB>num_samples`` line each."""
    lines = [str(Path(root).resolve())]
    for relpath, num_samples in entries:
        if "\t" in relpath or "\n" in relpath:
            raise ValueError(f"manifest paths cannot contain tabs or newlines: {relpath!r}")
        lines.append(f"{relpath}\t{int(num_samples)}")
    write_text_atomic(path, "\n".join(lines) + "\n")


def _entry(line: str) -> tuple[str, int] | None:
    """``relpath<TAB>num_samples`` -> (relpath, num_samples); None if the line is not one."""
    parts = line.split("\t")
    if len(parts) != 2 or not parts[0] or not parts[1].strip().isdigit():
        return None
    return parts[0], int(parts[1])


def read_manifest(path: str | Path) -> tuple[str, list[tuple[str, int]]]:
    """Read a manifest: ``(root, [(relpath, num_samples), ...])``.

    Raises Wav2Vec2Error naming the file and line when the manifest is empty, lacks its
    root line, or has a line that is not ``relpath<TAB>num_samples``.
    """
    lines = [line.rstrip("\r") for line in read_lines(path, "manifest")]
    if not lines or not lines[0].strip():
        raise Wav2Vec2Error("empty manifest: the first line must be the root folder", path)
    if _entry(lines[0]) is not None:
        raise Wav2Vec2Error(
            "line 1 is an entry, not the root folder: a manifest starts with the folder the "
            "paths are relative to",
            path,
        )
    entries = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        entry = _entry(line)
        if entry is None:
            hint = " (it has spaces where a tab goes)" if "\t" not in line else ""
            raise Wav2Vec2Error(
                f"line {number}: expected 'relative/path<TAB>num_samples'{hint}", path
            )
        entries.append(entry)
    return lines[0].strip(), entries


def letters_from_words(words: str) -> str:
    """``"HELLO WORLD"`` -> ``"H E L L O | W O R L D |"`` (fairseq's libri_labels.py)."""
    return " ".join(list(words.replace(" ", WORD_DELIMITER))) + " " + WORD_DELIMITER


def words_from_letters(letters: str) -> str:
    """The inverse of :func:`letters_from_words`."""
    return "".join(letters.split()).replace(WORD_DELIMITER, " ").strip()


def write_labels(path: str | Path, lines: Iterable[str]) -> None:
    """Write one label line per utterance (``.wrd`` or ``.ltr``)."""
    lines = list(lines)
    if any("\n" in line for line in lines):
        raise ValueError("a label cannot contain a newline")
    write_text_atomic(path, "".join(f"{line}\n" for line in lines))


def read_labels(path: str | Path, entries: int | None = None) -> list[str]:
    """Read one label per line (trailing newline characters removed, nothing else). With
    ``entries``, the file must have that many lines: one per manifest entry, in order, as
    fairseq keeps them; anything else is one error naming the file."""
    lines = read_lines(path, "labels")
    if entries is not None and len(lines) != entries:
        raise Wav2Vec2Error(
            f"{len(lines)} lines for {entries} manifest entries; a label file has one line "
            "per manifest entry, in order",
            path,
        )
    return lines


def letter_counts(transcripts: Iterable[str]) -> Counter[str]:
    """How often each letter symbol (``|`` included) occurs in the ``.ltr`` form."""
    counts: Counter[str] = Counter()
    for words in transcripts:
        counts.update(letters_from_words(words).split())
    return counts


def write_dictionary(path: str | Path, counts: dict[str, int], keep_order: bool = False) -> None:
    """Write ``SYMBOL COUNT`` lines, most frequent first (ties by symbol, for determinism), or
    with ``keep_order`` in the order given: to extend an existing dictionary, whose order a
    fine-tuned model depends on (output i is the i-th symbol)."""
    items = list(counts.items())
    ordered = items if keep_order else sorted(items, key=lambda kv: (-kv[1], kv[0]))
    write_text_atomic(path, "".join(f"{symbol} {count}\n" for symbol, count in ordered))

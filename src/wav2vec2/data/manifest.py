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
from wav2vec2.vocab import WORD_DELIMITER


def write_manifest(path: str | Path, root: str | Path, entries: Iterable[tuple[str, int]]) -> None:
    """Write a manifest: ``root`` (made absolute) then one ``relpath<TAB>num_samples`` line each."""
    lines = [str(Path(root).resolve())]
    for relpath, num_samples in entries:
        if "\t" in relpath or "\n" in relpath:
            raise ValueError(f"manifest paths cannot contain tabs or newlines: {relpath!r}")
        lines.append(f"{relpath}\t{int(num_samples)}")
    write_text_atomic(path, "\n".join(lines) + "\n")


def read_manifest(path: str | Path) -> tuple[str, list[tuple[str, int]]]:
    """Read a manifest: ``(root, [(relpath, num_samples), ...])``.

    Raises ``ValueError`` naming the line when a line is not ``relpath<TAB>int``.
    """
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    if not lines:
        raise ValueError(f"{path}: empty manifest (the first line must be the root directory)")
    entries = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 2 or not parts[1].strip().lstrip("-").isdigit():
            raise ValueError(f"{path}:{number}: expected 'relative/path<TAB>num_samples'")
        entries.append((parts[0], int(parts[1])))
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


def read_labels(path: str | Path) -> list[str]:
    """Read one label per line (trailing newline characters removed, nothing else)."""
    lines = Path(path).read_text(encoding="utf-8").split("\n")
    return lines[:-1] if lines[-1] == "" else lines


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


def read_dictionary(path: str | Path) -> dict[str, int]:
    """Read ``SYMBOL COUNT`` lines into an ordered ``{symbol: count}``."""
    out: dict[str, int] = {}
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.rsplit(" ", 1)
        if len(parts) != 2 or not parts[1].isdigit():
            raise ValueError(f"{path}:{number}: expected 'SYMBOL COUNT'")
        out[parts[0]] = int(parts[1])
    return out

"""Round-trips of the fairseq formats in wav2vec2.data.manifest."""

from __future__ import annotations

from pathlib import Path

import pytest

from wav2vec2.data.manifest import (
    letter_counts,
    letters_from_words,
    read_dictionary,
    read_labels,
    read_manifest,
    words_from_letters,
    write_dictionary,
    write_labels,
    write_manifest,
)
from wav2vec2.errors import Wav2Vec2Error


def test_manifest_round_trip(tmp_path: Path) -> None:
    entries = [("a/b.flac", 16000), ("c d/e.wav", 1)]
    write_manifest(tmp_path / "x.tsv", tmp_path, entries)
    text = (tmp_path / "x.tsv").read_text()
    assert text == f"{tmp_path.resolve()}\na/b.flac\t16000\nc d/e.wav\t1\n"
    root, got = read_manifest(tmp_path / "x.tsv")
    assert root == str(tmp_path.resolve()) and got == entries
    assert not list(tmp_path.glob(".*tmp"))  # the temporary file was renamed away


def test_manifest_rejects_bad_lines(tmp_path: Path) -> None:
    (tmp_path / "bad.tsv").write_text("/root\nfile.flac 123\n")
    with pytest.raises(Wav2Vec2Error, match=r"bad.tsv: line 2: .*spaces where a tab goes"):
        read_manifest(tmp_path / "bad.tsv")
    with pytest.raises(ValueError):
        write_manifest(tmp_path / "t.tsv", tmp_path, [("a\tb", 1)])


def test_letters_match_fairseq_libri_labels() -> None:
    assert letters_from_words("HELLO WORLD") == "H E L L O | W O R L D |"
    assert letters_from_words("IT'S") == "I T ' S |"
    assert words_from_letters("H E L L O | W O R L D |") == "HELLO WORLD"


def test_labels_round_trip(tmp_path: Path) -> None:
    lines = ["HELLO WORLD", "A", "IT'S"]
    write_labels(tmp_path / "x.wrd", lines)
    assert read_labels(tmp_path / "x.wrd") == lines
    write_labels(tmp_path / "empty.wrd", [])
    assert read_labels(tmp_path / "empty.wrd") == []


def test_dictionary_round_trip_sorted_by_count(tmp_path: Path) -> None:
    counts = letter_counts(["HELLO WORLD", "HE"])
    assert counts["|"] == 3 and counts["L"] == 3 and counts["H"] == 2
    write_dictionary(tmp_path / "dict.ltr.txt", counts)
    lines = (tmp_path / "dict.ltr.txt").read_text().splitlines()
    assert lines[:5] == ["L 3", "| 3", "E 2", "H 2", "O 2"]  # ties ordered by symbol
    got = read_dictionary(tmp_path / "dict.ltr.txt")
    assert got == dict(counts)
    values = list(got.values())
    assert values == sorted(values, reverse=True)

"""Importers on small generated trees: LibriSpeech layout and a generic TSV, bad input included."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from wav2vec2.cli import main
from wav2vec2.corpus.importers import import_librispeech, import_tsv
from wav2vec2.data.manifest import (
    letters_from_words,
    read_dictionary,
    read_labels,
    read_manifest,
)
from wav2vec2.errors import Wav2Vec2Error


def _audio(path: Path, samples: int, rate: int = 16000, channels: int = 1) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    noise = np.random.default_rng(samples).uniform(-0.3, 0.3, (samples, channels))
    sf.write(str(path), noise.astype(np.float32), rate, subtype="PCM_16")


def _chapter(root: Path, speaker: int, chapter: int, lines: dict[str, str | None]) -> Path:
    """Write a chapter: ``{utt_id: transcript}``, audio for every transcript not None."""
    folder = root / str(speaker) / str(chapter)
    folder.mkdir(parents=True, exist_ok=True)
    for i, (uid, text) in enumerate(lines.items()):
        if text is not None:
            _audio(folder / f"{uid}.flac", 8000 + 1000 * i)
    trans = folder / f"{speaker}-{chapter}.trans.txt"
    trans.write_text(
        "".join(f"{uid} {text or 'MISSING AUDIO HERE'}\n" for uid, text in lines.items())
    )
    return folder


@pytest.fixture
def libri(tmp_path: Path) -> Path:
    root = tmp_path / "LibriSpeech"
    _chapter(
        root / "train-clean-5", 19, 198, {"19-198-0000": "HELLO WORLD", "19-198-0001": "IT'S OK"}
    )
    _chapter(root / "train-clean-5", 26, 495, {"26-495-0000": "A B C"})
    dev = _chapter(root / "dev-clean-2", 84, 121, {"84-121-0000": "GOOD MORNING"})
    # Bad input: missing audio, digits, an empty line, unreadable audio, wrong rate,
    # stereo, audio with no transcript line, and an unreadable transcript file.
    bad = _chapter(
        root / "dev-clean-2",
        84,
        122,
        {"84-122-0000": "FINE", "84-122-0001": None, "84-122-0002": "ROOM 101"},
    )
    with (bad / "84-122.trans.txt").open("a") as f:
        f.write("\n84-122-0003 UNREADABLE\n84-122-0004 EIGHT K\n84-122-0005 STEREO\n")
    (bad / "84-122-0003.flac").write_bytes(b"not audio at all")
    _audio(bad / "84-122-0004.flac", 4000, rate=8000)
    _audio(bad / "84-122-0005.flac", 4000, channels=2)
    _audio(dev / "84-121-0099.flac", 4000)
    broken = _chapter(root / "dev-clean-2", 85, 1, {"85-1-0000": "LOST"})
    (broken / "85-1.trans.txt").write_bytes(b"\xff\xfe\x00bad")
    return root


def test_librispeech_tree(libri: Path, tmp_path: Path) -> None:
    dest = tmp_path / "out"
    report = import_librispeech(libri, dest)
    assert set(report.splits) == {"train-clean-5", "dev-clean-2"}
    root, entries = read_manifest(dest / "train-clean-5.tsv")
    assert root == str((libri / "train-clean-5").resolve())
    assert entries == [
        ("19/198/19-198-0000.flac", 8000),
        ("19/198/19-198-0001.flac", 9000),
        ("26/495/26-495-0000.flac", 8000),
    ]
    assert read_labels(dest / "train-clean-5.wrd") == ["HELLO WORLD", "IT'S OK", "A B C"]
    assert read_labels(dest / "train-clean-5.ltr")[0] == letters_from_words("HELLO WORLD")
    _, dev = read_manifest(dest / "dev-clean-2.tsv")
    assert [rel for rel, _ in dev] == ["84/121/84-121-0000.flac", "84/122/84-122-0000.flac"]
    assert read_labels(dest / "dev-clean-2.wrd") == ["GOOD MORNING", "FINE"]
    # Letter counts come from the training split.
    assert read_dictionary(dest / "dict.ltr.txt")["L"] == 3

    reasons = " | ".join(why for _, why in report.skipped)
    for expected in (
        "missing audio",
        "characters outside the vocabulary: '0' '1'",
        "empty line",
        "unreadable audio",
        "sample rate 8000 Hz",
        "2 channels",
        "no transcript line",
        "unreadable transcript file",
    ):
        assert expected in reasons
    text = (dest / "import-report.txt").read_text()
    assert "84-122-0001.flac\tmissing audio" in text
    assert "skipped" in report.render()


def test_single_split_folder_and_name(libri: Path, tmp_path: Path) -> None:
    report = import_librispeech(libri / "train-clean-5", tmp_path / "one", name="train")
    assert list(report.splits) == ["train"]
    assert len(read_labels(tmp_path / "one" / "train.wrd")) == 3


def test_librispeech_nothing_usable_writes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "bad"
    _chapter(root, 1, 1, {"1-1-0000": None})
    with pytest.raises(Wav2Vec2Error, match="no usable utterances"):
        import_librispeech(root, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    (tmp_path / "empty").mkdir()
    with pytest.raises(Wav2Vec2Error, match="no LibriSpeech layout"):
        import_librispeech(tmp_path / "empty", tmp_path / "x")
    with pytest.raises(Wav2Vec2Error, match="not a folder"):
        import_librispeech(tmp_path / "absent", tmp_path / "x")


def test_tsv(tmp_path: Path) -> None:
    audio = tmp_path / "clips"
    _audio(audio / "a.wav", 16000)
    _audio(audio / "b.flac", 3200)
    _audio(tmp_path / "elsewhere" / "c.wav", 1600)
    tsv = tmp_path / "list.tsv"
    tsv.write_text(
        "path\ttranscript\n"
        "clips/a.wav\tHello, World!\n"
        "clips/b.flac\tit's  fine\n"
        f"{tmp_path / 'elsewhere' / 'c.wav'}\tabsolute path\n"
        "\n"
        "clips/missing.wav\tgone\n"
        "clips/a.wav\tcosts $5\n"
        "clips/a.wav\n"
        "clips/a.wav\t   \n"
    )
    dest = tmp_path / "out"
    report = import_tsv(tsv, dest, name="train", normalize=True)
    root, entries = read_manifest(dest / "train.tsv")
    assert root == str(tmp_path.resolve())
    assert entries == [("clips/a.wav", 16000), ("clips/b.flac", 3200), ("elsewhere/c.wav", 1600)]
    assert read_labels(dest / "train.wrd") == ["HELLO WORLD", "IT'S FINE", "ABSOLUTE PATH"]
    reasons = [why for _, why in report.skipped]
    assert reasons == [
        "empty line",
        "missing audio",
        "characters outside the vocabulary: '$' '5'",
        "expected 2 tab-separated fields, got 1",
        "empty transcript",
    ]
    # Without --normalize, punctuation is outside the vocabulary; case is folded.
    report = import_tsv(tsv, tmp_path / "strict", name="dev")
    assert read_labels(tmp_path / "strict" / "dev.wrd") == ["IT'S FINE", "ABSOLUTE PATH"]
    assert any("','" in why for _, why in report.skipped)


def test_tsv_errors(tmp_path: Path) -> None:
    with pytest.raises(Wav2Vec2Error, match="no such file"):
        import_tsv(tmp_path / "nope.tsv", tmp_path / "out")
    (tmp_path / "bin.tsv").write_bytes(b"\xff\xfe\xfa")
    with pytest.raises(Wav2Vec2Error, match="UTF-8"):
        import_tsv(tmp_path / "bin.tsv", tmp_path / "out")
    (tmp_path / "bad.tsv").write_text("x.wav\tHELLO\n")
    with pytest.raises(Wav2Vec2Error, match="no usable utterances"):
        import_tsv(tmp_path / "bad.tsv", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_cli_importers(libri: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["corpus", "librispeech", str(libri), str(tmp_path / "ls")]) == 0
    assert "train-clean-5: 3 utterances" in capsys.readouterr().err
    _audio(tmp_path / "a.wav", 1600)
    (tmp_path / "in.tsv").write_text("a.wav\tHI THERE\n")
    assert (
        main(["corpus", "tsv", str(tmp_path / "in.tsv"), str(tmp_path / "t"), "--name", "dev"]) == 0
    )
    assert read_labels(tmp_path / "t" / "dev.wrd") == ["HI THERE"]
    assert main(["corpus", "tsv", str(tmp_path / "missing.tsv"), str(tmp_path / "t")]) == 2

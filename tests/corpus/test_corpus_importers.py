"""Importers on small generated trees: LibriSpeech layout and a generic TSV, bad input included."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bad_audio import corrupt_flac
from full_disk import NO_SPACE, no_space_under, snapshot
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


def _clips_tsv(tmp_path: Path, lines: dict[str, int]) -> Path:
    """``list.tsv`` naming one clip per transcript: ``{transcript: samples}``."""
    rows = []
    for i, (text, samples) in enumerate(lines.items()):
        _audio(tmp_path / "clips" / f"{i}.wav", samples)
        rows.append(f"clips/{i}.wav\t{text}\n")
    (tmp_path / "list.tsv").write_text("".join(rows))
    return tmp_path / "list.tsv"


def test_an_existing_split_is_kept_unless_replace_is_asked(
    libri: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tsv, dest = _clips_tsv(tmp_path, {"HELLO": 16000}), tmp_path / "out"
    import_tsv(tsv, dest, name="train")
    before = snapshot(dest)
    tsv.write_text("clips/0.wav\tGOODBYE\n")
    code = main(["corpus", "tsv", str(tsv), str(dest), "--name", "train"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert (
        f"{dest}: split 'train' already exists (train.tsv, train.wrd, train.ltr); import under "
        "another --name or into another folder, or add --replace to replace it"
    ) in err
    assert snapshot(dest) == before
    # Another name is added beside it; --replace replaces it.
    assert main(["corpus", "tsv", str(tsv), str(dest), "--name", "dev"]) == 0
    assert main(["corpus", "tsv", str(tsv), str(dest), "--name", "train", "--replace"]) == 0
    assert read_labels(dest / "train.wrd") == ["GOODBYE"] and (dest / "dev.tsv").is_file()
    # The same for LibriSpeech splits, checked before any audio is read.
    import_librispeech(libri, tmp_path / "ls")
    with pytest.raises(Wav2Vec2Error, match="split 'dev-clean-2' already exists"):
        import_librispeech(libri, tmp_path / "ls")
    assert import_librispeech(libri, tmp_path / "ls", replace=True).splits


def test_an_existing_dictionary_is_never_reordered(tmp_path: Path) -> None:
    dest = tmp_path / "out"
    import_tsv(_clips_tsv(tmp_path, {"HELLO WORLD": 16000}), dest, name="train")
    first = (dest / "dict.ltr.txt").read_bytes()
    # A second training split with other letter frequencies leaves it byte for byte.
    import_tsv(_clips_tsv(tmp_path, {"ZZZ ZZZ ZZZ": 16000}), dest, name="train_b")
    assert (dest / "dict.ltr.txt").read_bytes() == first
    # A dictionary without some letters (another tool's): new ones go after the others.
    (dest / "dict.ltr.txt").write_text("| 9\nO 7\nL 5\nH 3\n")
    report = import_tsv(_clips_tsv(tmp_path, {"HOLA": 16000}), dest, name="dev")
    assert list(read_dictionary(dest / "dict.ltr.txt")) == ["|", "O", "L", "H", "A"]
    assert (dest / "dict.ltr.txt").read_text().startswith("| 9\nO 7\nL 5\nH 3\n")
    assert f"{dest / 'dict.ltr.txt'}: appended A after its 4 symbols" in report.render()


def test_a_bad_byte_costs_its_line_only(tmp_path: Path) -> None:
    tsv = _clips_tsv(tmp_path, {"ONE": 16000, "TWO": 16000, "THREE": 16000})
    lines = tsv.read_bytes().splitlines(keepends=True)
    lines[1] = lines[1].replace(b"TWO", b"TW\xff")
    tsv.write_bytes(b"".join(lines))
    report = import_tsv(tsv, tmp_path / "out")
    assert read_labels(tmp_path / "out" / "train.wrd") == ["ONE", "THREE"]
    assert report.skipped == [(f"{tsv}:2", "not UTF-8 text: byte 0xff at column 15")]


def test_a_chapter_without_transcripts_is_reported(libri: Path, tmp_path: Path) -> None:
    lost = libri / "train-clean-5" / "19" / "200"
    for uid in ("19-200-0000", "19-200-0001"):
        _audio(lost / f"{uid}.flac", 8000)
    _audio(libri / "test-clean" / "7" / "8" / "7-8-0000.flac", 8000)  # a split without any
    report = import_librispeech(libri, tmp_path / "out")
    assert (str(lost), "no transcript file: 2 audio files not imported (no 19-200.trans.txt)") in (
        report.skipped
    )
    assert (
        str(libri.resolve() / "test-clean"),
        "no transcript file: split not imported (no chapter has one)",
    ) in report.skipped
    assert "no transcript file" in report.render()


def test_audio_that_does_not_decode_or_is_too_short_is_skipped(libri: Path, tmp_path: Path) -> None:
    tsv = _clips_tsv(tmp_path, {"GOOD": 16000, "SHORT": 399, "CORRUPT": 16000})
    corrupt_flac(tmp_path / "clips" / "2.flac")
    tsv.write_text(tsv.read_text().replace("clips/2.wav", "clips/2.flac"))
    report = import_tsv(tsv, tmp_path / "out")
    assert read_labels(tmp_path / "out" / "train.wrd") == ["GOOD"]
    reasons = dict(report.skipped)
    assert reasons[f"{tsv}:2 {tmp_path / 'clips' / '1.wav'}"] == (
        "too short: 399 samples, under the receptive field (400)"
    )
    assert reasons[f"{tsv}:3 {tmp_path / 'clips' / '2.flac'}"].startswith(
        "cannot decode: unreadable audio ("
    )
    corrupt_flac(libri / "train-clean-5" / "19" / "198" / "19-198-0000.flac")
    report = import_librispeech(libri / "train-clean-5", tmp_path / "ls", name="train")
    assert read_labels(tmp_path / "ls" / "train.wrd") == ["IT'S OK", "A B C"]
    assert "1 cannot decode" in report.render()


def test_outputs_in_the_way_are_refused_and_nothing_is_written(tmp_path: Path) -> None:
    tsv = _clips_tsv(tmp_path, {"HELLO": 16000})
    (tmp_path / "file").write_text("x")
    with pytest.raises(Wav2Vec2Error, match="file: is a file; give a folder path"):
        import_tsv(tsv, tmp_path / "file")
    (tmp_path / "out" / "train.ltr").mkdir(parents=True)
    with pytest.raises(Wav2Vec2Error, match="train.ltr: is a folder; give a file path"):
        import_tsv(tsv, tmp_path / "out", replace=True)
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["train.ltr"]
    assert (tmp_path / "file").read_text() == "x"
    # The input itself, where the split would go: refused even with --replace.
    before = tsv.read_bytes()
    with pytest.raises(Wav2Vec2Error, match="list.tsv: is the input: split 'list' would be"):
        import_tsv(tsv, tmp_path, name="list", replace=True)
    assert tsv.read_bytes() == before


def test_an_import_on_a_full_disk_keeps_what_was_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    tsv, dest = _clips_tsv(tmp_path, {"HELLO": 16000}), tmp_path / "disk" / "out"
    import_tsv(tsv, dest)
    before = snapshot(dest)
    no_space_under(monkeypatch, tmp_path / "disk")
    code = main(["corpus", "tsv", str(tsv), str(dest), "--replace"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert f"{dest / 'train.tsv'}: cannot write ({NO_SPACE}); what was there before" in err
    assert snapshot(dest) == before

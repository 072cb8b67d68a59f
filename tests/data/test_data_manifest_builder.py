"""``wav2vec2 manifest``: fairseq layout, bad files skipped and listed, split determinism."""

from __future__ import annotations

import random

import pytest

from data_support import write_wave
from wav2vec2.cli import main
from wav2vec2.data.manifest import read_manifest


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "audio"
    write_wave(root / "a" / "one.wav", 16000)
    write_wave(root / "a" / "b" / "two.FLAC", 4000, rate=8000)  # 8000 samples at 16 kHz
    write_wave(root / "three.flac", 44100, rate=44100, channels=2)
    write_wave(root / "short8k.wav", 250, rate=8000)  # 500 samples at 16 kHz: long enough
    write_wave(root / "short.wav", 100)  # under the 400-sample receptive field
    write_wave(root / "short44k.wav", 1000, rate=44100)  # 363 samples at 16 kHz
    (root / "corrupt.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk")
    (root / "empty.flac").write_bytes(b"")
    (root / "notes.txt").write_text("not audio")
    write_wave(root / "other.aiff", 16000)
    return root


def run(capsys, *argv):
    code = main(["manifest", *(str(a) for a in argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_layout_round_trip_and_bad_files(tree, tmp_path, capsys):
    dest = tmp_path / "manifests" / "new"  # created
    code, out, err = run(capsys, tree, dest, "--valid-percent", 0)
    assert code == 0, err
    root = str(tree.resolve())
    # exact fairseq layout: root line, then relpath<TAB>frames at the file's own rate
    assert (dest / "train.tsv").read_text() == (
        f"{root}\na/b/two.FLAC\t4000\na/one.wav\t16000\nshort8k.wav\t250\nthree.flac\t44100\n"
    )
    assert (dest / "valid.tsv").read_text() == f"{root}\n"  # --valid-percent 0, as fairseq
    assert read_manifest(dest / "train.tsv") == (
        root,
        [("a/b/two.FLAC", 4000), ("a/one.wav", 16000), ("short8k.wav", 250), ("three.flac", 44100)],
    )
    skipped = [line for line in out.splitlines() if line.startswith("skipped ")]
    assert len(skipped) == 5  # four listed plus the summary line
    for name in ("corrupt.wav", "empty.flac", "short.wav", "short44k.wav"):
        assert any(line.startswith(f"skipped {name}: ") for line in skipped), out
    assert "skipped 4 files" in out
    assert "Traceback" not in err
    assert "train   4 files" in out


def test_extension_filter(tree, tmp_path, capsys):
    code, _, _ = run(capsys, tree, tmp_path / "m", "--valid-percent", 0, "--ext", "FLAC")
    assert code == 0
    _, entries = read_manifest(tmp_path / "m" / "train.tsv")
    assert [rel for rel, _ in entries] == ["a/b/two.FLAC", "three.flac"]
    code, _, _ = run(capsys, tree, tmp_path / "o", "--valid-percent", 0, "--ext", ".AIFF")
    assert code == 0
    assert read_manifest(tmp_path / "o" / "train.tsv")[1] == [("other.aiff", 16000)]


def test_split_is_fairseqs_rule_and_deterministic(tmp_path, capsys):
    root = tmp_path / "audio"
    names = [f"s{k:02d}.wav" for k in range(30)]
    for k, name in enumerate(names):
        write_wave(root / name, 800 + k)
    outs = []
    for dest, seed in (("x", 7), ("y", 7), ("z", 8)):
        code, _, _ = run(capsys, root, tmp_path / dest, "--valid-percent", 30,
                         "--seed", seed)  # fmt: skip
        assert code == 0
        outs.append([(tmp_path / dest / f).read_bytes() for f in ("train.tsv", "valid.tsv")])
    assert outs[0] == outs[1]
    assert outs[0] != outs[2]
    # fairseq: one draw per file in order; train if draw > p else valid
    rand = random.Random(7)
    expected_valid = [n for n in names if not rand.random() > 0.3]
    assert 0 < len(expected_valid) < len(names)
    assert [r for r, _ in read_manifest(tmp_path / "x" / "valid.tsv")[1]] == expected_valid
    _, train = read_manifest(tmp_path / "x" / "train.tsv")
    assert len(train) + len(expected_valid) == len(names)
    code, _, _ = run(capsys, root, tmp_path / "all", "--valid-percent", 100)
    assert len(read_manifest(tmp_path / "all" / "valid.tsv")[1]) == len(names)


def test_errors_are_one_line(tmp_path, capsys):
    code, _, err = run(capsys, tmp_path / "missing", tmp_path / "m", "--valid-percent", 1)
    assert code == 2 and "not a directory" in err and "Traceback" not in err
    (tmp_path / "empty").mkdir()
    code, _, err = run(capsys, tmp_path / "empty", tmp_path / "m", "--valid-percent", 1)
    assert code == 2 and "no files with extension flac, wav" in err
    code, _, err = run(capsys, tmp_path / "empty", tmp_path / "m", "--valid-percent", 150)
    assert code == 2 and "[0, 100]" in err

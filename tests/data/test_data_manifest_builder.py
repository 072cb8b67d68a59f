"""``wav2vec2 manifest``: fairseq layout, bad files skipped and listed, split determinism."""

from __future__ import annotations

import random

import pytest

from bad_audio import corrupt_flac
from data_support import write_wave
from full_disk import NO_SPACE, fill, no_space_under, snapshot, tmpfs
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


def test_audio_that_does_not_decode_is_skipped(tree, tmp_path, capsys):
    corrupt_flac(tree / "corrupt_data.flac")  # a sound header: only decoding finds it
    code, out, _ = run(capsys, tree, tmp_path / "m", "--valid-percent", 0)
    assert code == 0
    assert "skipped corrupt_data.flac: unreadable audio (" in out and "skipped 5 files" in out
    assert "corrupt_data.flac" not in (tmp_path / "m" / "train.tsv").read_text()


def test_outputs_in_the_way_are_refused_and_nothing_is_written(tree, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    code, out, err = run(capsys, tree, tmp_path / "file", "--valid-percent", 0)
    assert code == 2 and "file: is a file; give a folder path" in err
    assert len(err.strip().splitlines()) == 1 and (tmp_path / "file").read_text() == "x"
    (tmp_path / "m" / "train.tsv").mkdir(parents=True)
    code, out, err = run(capsys, tree, tmp_path / "m", "--valid-percent", 0)
    assert code == 2 and "train.tsv: is a folder; give a file path" in err
    assert [p.name for p in (tmp_path / "m").iterdir()] == ["train.tsv"]  # no valid.tsv alone
    # A labeled split (an imported corpus) would no longer match a new train.tsv.
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "train.wrd").write_text("HELLO\n")
    code, out, err = run(capsys, tree, tmp_path / "corpus", "--valid-percent", 0)
    assert code == 2 and "holds a labeled split (train.wrd)" in err
    assert [p.name for p in (tmp_path / "corpus").iterdir()] == ["train.wrd"]


def test_a_full_disk_keeps_the_old_manifests(tree, tmp_path, capsys, monkeypatch):
    dest = tmp_path / "disk" / "m"
    assert run(capsys, tree, dest, "--valid-percent", 50)[0] == 0
    before = snapshot(dest)
    no_space_under(monkeypatch, tmp_path / "disk")
    code, _, err = run(capsys, tree, dest, "--valid-percent", 0)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert f"{dest / 'train.tsv'}: cannot write ({NO_SPACE}); what was there before" in err
    assert snapshot(dest) == before


def test_a_real_full_disk_keeps_the_old_manifests(tree, tmp_path, capsys):
    with tmpfs(tmp_path / "disk", size="64k") as disk:
        assert run(capsys, tree, disk / "m", "--valid-percent", 50)[0] == 0
        before = snapshot(disk)
        fill(disk)
        code, _, err = run(capsys, tree, disk / "m", "--valid-percent", 0)
        assert code == 2 and len(err.strip().splitlines()) == 1
        assert f"{disk / 'm'}" in err and NO_SPACE in err and ".tmp-" not in err
        assert snapshot(disk) == before

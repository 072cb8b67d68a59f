"""End to end: a tiny synthesized corpus, its formats, determinism, resuming, the CLI."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from full_disk import NO_SPACE, no_space_under, snapshot, tmpfs
from wav2vec2.cli import main
from wav2vec2.corpus.augment import AugmentConfig
from wav2vec2.corpus.make import make_corpus, missing_packages
from wav2vec2.corpus.plan import CorpusConfig
from wav2vec2.corpus.sources import austen_folder
from wav2vec2.data.manifest import (
    letters_from_words,
    read_dictionary,
    read_labels,
    read_manifest,
)
from wav2vec2.errors import Wav2Vec2Error

TINY = CorpusConfig(hours=0.02, seed=3)  # ~70 s of audio: 8-10 utterances
LABELED = ("train_10m", "train_1h", "train_10h", "dev", "test")


def _need_corpus_packages() -> None:
    if missing_packages() or austen_folder() is None:
        pytest.skip(
            f"corpus packages missing: run scripts/install-system-deps.sh ({missing_packages()})"
        )


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _need_corpus_packages()
    dest = tmp_path_factory.mktemp("corpus") / "tiny"
    make_corpus(dest, TINY, workers=2, install=False, progress=False)
    return dest


def _snapshot(dest: Path) -> dict[str, bytes]:
    """Every output file's bytes, manifests without their (absolute root) first line."""
    out = {}
    for path in sorted(dest.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            if path.suffix == ".tsv":
                data = data.split(b"\n", 1)[1]
            if path.name == "summary.json":
                continue  # holds nothing path-dependent, but compared through the rest
            out[path.relative_to(dest).as_posix()] = data
    return out


def test_outputs_exist_and_formats_hold(corpus: Path) -> None:
    for name in LABELED:
        root, entries = read_manifest(corpus / f"{name}.tsv")
        assert root == str(corpus)
        words = read_labels(corpus / f"{name}.wrd")
        letters = read_labels(corpus / f"{name}.ltr")
        assert len(entries) == len(words) == len(letters) > 0, name
        for w, ltr in zip(words, letters):
            assert re.fullmatch(r"[A-Z']+( [A-Z']+)*", w)
            assert ltr == letters_from_words(w)
    assert not (corpus / "pretrain.wrd").exists()  # pretraining is unlabeled
    symbols = read_dictionary(corpus / "dict.ltr.txt")
    assert set(symbols) == set("ABCDEFGHIJKLMNOPQRSTUVWXYZ'|")
    assert list(symbols.values()) == sorted(symbols.values(), reverse=True)


def test_audio_is_16k_mono_16bit_peak_normalized(corpus: Path) -> None:
    root, entries = read_manifest(corpus / "pretrain.tsv")
    _, dev = read_manifest(corpus / "dev.tsv")
    _, test = read_manifest(corpus / "test.tsv")
    for rel, samples in entries + dev + test:
        info = sf.info(str(Path(root) / rel))
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert info.frames == samples
        audio, _ = sf.read(str(Path(root) / rel), dtype="int16")
        peak = int(np.abs(audio.astype(np.int32)).max())
        assert peak == round(32767 * 10 ** (-1 / 20))  # -1 dBFS: normalized, never clipped
    assert not list(corpus.rglob(".part-*"))


def test_splits_are_disjoint_on_disk(corpus: Path) -> None:
    summary = json.loads((corpus / "summary.json").read_text())
    splits = summary["splits"]
    train = set(splits["pretrain"]["speakers"])
    assert not train & set(splits["dev"]["speakers"])
    assert not train & set(splits["test"]["speakers"])
    assert splits["train_10h"]["capped"]  # 0.02 h cannot fill 10 hours
    train_text = {line for line in read_labels(corpus / "train_10h.wrd")}
    for name in ("dev", "test"):
        for line in read_labels(corpus / f"{name}.wrd"):
            assert all(line not in t for t in train_text)
    # Nested labeled subsets.
    m10 = read_manifest(corpus / "train_10m.tsv")[1]
    h1 = read_manifest(corpus / "train_1h.tsv")[1]
    h10 = read_manifest(corpus / "train_10h.tsv")[1]
    pre = read_manifest(corpus / "pretrain.tsv")[1]
    assert m10 == h1[: len(m10)] and h1 == h10[: len(h1)] and h10 == pre[: len(h10)]
    assert (corpus / "summary.md").read_text().startswith("# Built-in speech corpus")


def test_same_seed_gives_identical_bytes(corpus: Path, tmp_path: Path) -> None:
    other = tmp_path / "again"
    make_corpus(other, TINY, workers=1, install=False, progress=False)
    assert _snapshot(other) == _snapshot(corpus)


def test_resume_after_interruption(corpus: Path, tmp_path: Path) -> None:
    copy = tmp_path / "resumed"
    shutil.copytree(corpus, copy)
    before = _snapshot(copy)
    # An interrupted run: some utterances missing, a half-written temporary file, no manifests.
    flacs = sorted(copy.rglob("*.flac"))
    for path in flacs[::3]:
        path.unlink()
    (flacs[1].parent / f".part-123-{flacs[1].name}").write_bytes(b"half")
    for path in copy.glob("*.tsv"):
        path.unlink()
    make_corpus(copy, TINY, workers=2, install=False, progress=False)
    assert _snapshot(copy) == before


def test_other_settings_into_the_same_folder_are_refused(corpus: Path) -> None:
    with pytest.raises(Wav2Vec2Error, match="other settings"):
        make_corpus(corpus, CorpusConfig(hours=0.02, seed=4), install=False, progress=False)


def test_augmentation_touches_training_only(corpus: Path, tmp_path: Path) -> None:
    config = CorpusConfig(
        hours=0.02, seed=3, augment=AugmentConfig(noise_prob=1.0, speed_prob=1.0, reverb_prob=1.0)
    )
    summary = make_corpus(tmp_path / "aug", config, workers=2, install=False, progress=False)
    splits = summary["splits"]
    assert splits["pretrain"]["augmented"] == splits["pretrain"]["utterances"] > 0
    assert splits["dev"]["augmented"] == splits["test"]["augmented"] == 0
    # dev/test labels and audio are the same as without augmentation.
    for name in ("dev", "test"):
        for ext in (".wrd", ".ltr"):
            assert (tmp_path / "aug" / f"{name}{ext}").read_bytes() == (
                corpus / f"{name}{ext}"
            ).read_bytes()
    for path in (tmp_path / "aug" / "audio").glob("[dt]e*/*/*.flac"):
        assert path.read_bytes() == (corpus / path.relative_to(tmp_path / "aug")).read_bytes()


def test_cli(corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["corpus", "make", str(corpus), "--hours", "0.02", "--seed", "3", "--no-install"]
    assert main([*args, "--workers", "1"]) == 0  # everything exists: only rewrites manifests
    assert main(["corpus", "make", str(corpus), "--hours", "0.03", "--no-install"]) == 2
    assert "other settings" in capsys.readouterr().err


def test_cli_sources(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from wav2vec2.corpus.plan import sentence_blocks
    from wav2vec2.corpus.sources import all_passages

    _need_corpus_packages()
    dest = tmp_path / "kjv"
    args = ["corpus", "make", str(dest), "--hours", "0.02", "--no-install", "--workers", "2"]
    assert main([*args, "--sources", "kjv"]) == 0
    kjv = {s.words for b in sentence_blocks({"kjv": all_passages()["kjv"]}, 3, 35) for s in b}
    lines = (dest / "lm.txt").read_text().splitlines()
    assert lines and set(lines) <= kjv
    assert json.loads((dest / "corpus.json").read_text())["config"]["sources"] == ["kjv"]
    for split in ("train_10h", "test"):
        words = (dest / f"{split}.wrd").read_text().split()
        assert words and set(words) <= {w for s in kjv for w in s.split()}
    capsys.readouterr()
    assert main([*args, "--sources", "austen"]) == 2  # other text into the same folder
    assert "other settings" in capsys.readouterr().err
    assert main(["corpus", "make", str(tmp_path / "x"), "--sources", "bible"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "unknown text source bible" in err
    assert not (tmp_path / "x").exists()


def test_cli_closed_vocabulary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from wav2vec2.corpus.plan import closed_vocabulary, sentence_blocks
    from wav2vec2.corpus.sources import all_passages

    _need_corpus_packages()
    dest = tmp_path / "v500"
    args = ["corpus", "make", str(dest), "--hours", "0.02", "--no-install", "--workers", "2"]
    assert main([*args, "--vocabulary", "500"]) == 0
    text = [s for b in sentence_blocks(all_passages(), 3, 35) for s in b]
    allowed = closed_vocabulary(text, 500)
    for name in ("train_10h", "dev", "test", "lm.txt"):
        path = dest / (name if "." in name else f"{name}.wrd")
        words = path.read_text().split()
        assert words and set(words) <= allowed, name
    assert json.loads((dest / "corpus.json").read_text())["config"]["vocabulary"] == 500
    assert "(closed: the 500 most frequent words)" in (dest / "summary.md").read_text()
    capsys.readouterr()
    assert main([*args, "--vocabulary", "400"]) == 2  # another vocabulary into the same folder
    assert "other settings" in capsys.readouterr().err
    assert main(["corpus", "make", str(tmp_path / "y"), "--vocabulary", "-1"]) == 2
    assert "vocabulary must be 0" in capsys.readouterr().err


def test_a_corpus_from_before_new_settings_resumes(corpus: Path, tmp_path: Path) -> None:
    # corpus.json written before --sources and --vocabulary existed lacks those keys; they
    # read as their defaults, so re-running the same command still resumes.
    copy = tmp_path / "older"
    shutil.copytree(corpus, copy)
    record = json.loads((copy / "corpus.json").read_text())
    del record["config"]["sources"], record["config"]["vocabulary"]
    (copy / "corpus.json").write_text(json.dumps(record))
    before = _snapshot(copy)
    make_corpus(copy, TINY, workers=1, install=False, progress=False)
    assert _snapshot(copy) == before


def test_a_full_disk_keeps_the_corpus_that_was_there(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = tmp_path / "disk" / "tiny"
    shutil.copytree(corpus, copy)
    before = snapshot(copy)
    no_space_under(monkeypatch, tmp_path / "disk")
    # Everything is made: the re-run only rewrites the manifests, and cannot.
    message = f"{copy / 'pretrain.tsv'}: cannot write \\({NO_SPACE}\\); what was there before"
    with pytest.raises(Wav2Vec2Error, match=message):
        make_corpus(copy, TINY, workers=1, install=False, progress=False)
    assert snapshot(copy) == before


def test_a_real_full_disk_is_one_line_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _need_corpus_packages()
    with tmpfs(tmp_path / "disk", size="64k") as disk:
        # libsndfile says only "System error" when a FLAC file cannot be written; two
        # workers, so that the error also crosses from a worker process.
        args = ["corpus", "make", str(disk / "c"), "--hours", "0.02", "--seed", "3"]
        assert main([*args, "--workers", "2", "--no-install"]) == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err and "System error" not in err, err
        last = err.strip().splitlines()[-1]
        assert last.startswith(f"wav2vec2 corpus: error: {disk / 'c' / 'audio'}/"), err
        assert f".flac: cannot write ({NO_SPACE}); what was there before is unchanged" in last
        assert not list((disk / "c").rglob(".tmp-*")), "a temporary file was left behind"

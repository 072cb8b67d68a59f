"""n-gram LMs (`wav2vec2 lm build`, KenLM) and lexicon beam search (flashlight)."""

from __future__ import annotations

import json
import math

import kenlm
import pytest
import torch

from full_disk import NO_SPACE, fill, no_space_under, snapshot, tmpfs
from lm_support import TEXT, VOCAB, build_lm, emissions, spell
from wav2vec2.beam_search import BeamSearchConfig, LexiconBeamDecoder
from wav2vec2.cli import main
from wav2vec2.decoding import GreedyDecoder
from wav2vec2.errors import Wav2Vec2Error
from wav2vec2.ngram import _reason, lm_files, read_info, read_lexicon
from wav2vec2.vocab import Vocabulary

lm_dir = pytest.fixture(scope="module", name="lm_dir")(build_lm)


def test_build_writes_model_lexicon_and_info(lm_dir):
    model, lexicon = lm_files(lm_dir)
    assert model.name == "lm.bin"
    entries = dict((w, s) for w, s in read_lexicon(lexicon))
    assert entries["CAT"] == ["C", "A", "T", "|"] and len(entries) == 11
    info = json.loads((lm_dir / "lm.json").read_text())
    assert info["order"] == 3 and info["sentences"] == len(TEXT) and info["vocabulary"] == 11
    lm = kenlm.Model(str(model))
    # A sentence of the text scores far above the same words shuffled.
    assert lm.score("THE CAT SAT ON THE MAT") > lm.score("MAT THE ON SAT CAT THE") + 3


def test_lm_corrects_a_letter_the_acoustics_got_wrong(lm_dir):
    # The C of CAT looks more like a K: greedy spells KAT, a word the lexicon lacks.
    frames = spell("THE CAT SAT", {3: {"K": 0.5, "C": 0.4}})
    logits = emissions(frames)
    lengths = torch.tensor([logits.shape[1]])
    assert GreedyDecoder(VOCAB).decode(logits, lengths)[0].text == "THE KAT SAT"
    decoder = LexiconBeamDecoder(VOCAB, lm_dir, BeamSearchConfig(lm_weight=1.0, word_score=0.0))
    (hyp,) = decoder.decode(logits, lengths)
    assert hyp.text == "THE CAT SAT"
    assert VOCAB.decode(list(hyp.tokens)).split() == ["THE", "CAT", "SAT"]
    assert list(hyp.frames) == sorted(hyp.frames) and hyp.frames[0] == 0
    # Where the acoustics are right, the beam's path is greedy's: same labels, same frames.
    clean = emissions([{}, {}] + spell("THE CAT SAT"))
    clean_lengths = torch.tensor([clean.shape[1]])
    (beam,) = decoder.decode(clean, clean_lengths)
    (best,) = GreedyDecoder(VOCAB).decode(clean, clean_lengths)
    assert (beam.text, beam.tokens, beam.frames) == (best.text, best.tokens, best.frames)
    assert beam.frames[0] == 2
    assert decoder.describe()["decoder"] == "lexicon beam search"


def test_lm_weight_picks_the_likelier_word(lm_dir):
    # Acoustically MAT and RAT are a tie after "THE CAT SAT ON THE": the LM decides (MAT).
    frames = spell("THE CAT SAT ON THE MAT", {14: {"M": 0.45, "R": 0.45}})
    logits = emissions(frames)
    (hyp,) = LexiconBeamDecoder(VOCAB, lm_dir, BeamSearchConfig()).decode(
        logits, torch.tensor([logits.shape[1]])
    )
    assert hyp.text == "THE CAT SAT ON THE MAT"
    other = LexiconBeamDecoder(VOCAB, lm_dir, BeamSearchConfig()).with_config(
        BeamSearchConfig(lm_weight=0.0, word_score=0.0)
    )
    assert other.describe()["lm_weight"] == 0.0
    # Without the LM the tie goes either way, but every word is still a lexicon word.
    (plain,) = other.decode(logits, torch.tensor([logits.shape[1]]))
    assert plain.text in ("THE CAT SAT ON THE MAT", "THE CAT SAT ON THE RAT")


def test_errors_are_one_line(tmp_path, lm_dir, capsys):
    with pytest.raises(Wav2Vec2Error, match="LM directory not found"):
        LexiconBeamDecoder(VOCAB, tmp_path / "nothing", BeamSearchConfig())
    (tmp_path / "empty.txt").write_text("\n \n")
    assert main(["lm", "build", str(tmp_path / "empty.txt"), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "empty.txt: no text" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()
    # --out naming a folder that is not an LM is refused, and nothing in it is touched.
    (tmp_path / "text.txt").write_text("\n".join(TEXT) + "\n")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "keep.flac").write_bytes(b"audio")
    assert main(["lm", "build", str(tmp_path / "text.txt"), "--out", str(tmp_path / "data")]) == 2
    err = capsys.readouterr().err
    assert "data: exists and is not an LM directory" in err and len(err.strip().splitlines()) == 1
    assert (tmp_path / "data" / "keep.flac").read_bytes() == b"audio"
    # An earlier LM is replaced by the new one, and no temporary folder is left.
    build = ["lm", "build", str(tmp_path / "text.txt"), "--out", str(tmp_path / "lm")]
    assert main([*build, "--order", "3"]) == 0 and main([*build, "--order", "2"]) == 0
    assert read_info(tmp_path / "lm").order == 2 and not list(tmp_path.glob(".lm.*"))
    capsys.readouterr()
    digits = Vocabulary.from_fairseq_symbols(["|", "1", "2"])
    with pytest.raises(Wav2Vec2Error, match="no lexicon word can be spelled"):
        LexiconBeamDecoder(digits, lm_dir, BeamSearchConfig())
    with pytest.raises(Wav2Vec2Error, match="beam must be"):
        BeamSearchConfig(beam=0)
    assert math.isfinite(BeamSearchConfig().lm_weight)


def test_read_info_only_for_a_complete_lm(lm_dir, tmp_path):
    info = read_info(lm_dir)
    assert info is not None and info.order == 3 and info.vocabulary == 11
    assert read_info(tmp_path) is None  # no model, no lexicon


def build(text, out, order: int = 3) -> list[str]:
    return ["lm", "build", str(text), "--out", str(out), "--order", str(order)]


def test_build_replaces_only_its_own_files(tmp_path, capsys):
    (tmp_path / "text.txt").write_text("\n".join(TEXT) + "\n")
    lm = tmp_path / "lm"
    assert main(build(tmp_path / "text.txt", lm)) == 0
    # Files someone put beside an LM (notes, an ARPA of their own) are not the build's.
    (lm / "notes.txt").write_text("mine")
    (lm / "lm.arpa").write_text("their own ARPA")
    # Weights tuned for the old LM (`lm tune`) are: they go with it.
    (lm / "tuned.json").write_text("{}")
    assert main(build(tmp_path / "text.txt", lm, order=2)) == 0
    assert read_info(lm).order == 2
    assert (lm / "notes.txt").read_text() == "mine"
    assert (lm / "lm.arpa").read_text() == "their own ARPA"
    assert sorted(p.name for p in lm.iterdir()) == [
        "lexicon.txt", "lm.arpa", "lm.bin", "lm.json", "notes.txt",
    ]  # fmt: skip


def test_build_on_a_full_disk_keeps_the_old_lm(tmp_path, capsys, monkeypatch):
    (tmp_path / "text.txt").write_text("\n".join(TEXT) + "\n")
    lm = tmp_path / "disk" / "lm"
    assert main(build(tmp_path / "text.txt", lm)) == 0
    (lm / "notes.txt").write_text("mine")
    before = snapshot(lm)
    capsys.readouterr()
    no_space_under(monkeypatch, tmp_path / "disk")
    assert main(build(tmp_path / "text.txt", lm, order=2)) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert f"{lm / 'lexicon.txt'}: cannot write ({NO_SPACE}); what was there before" in err
    assert snapshot(lm) == before and read_info(lm).order == 3


def test_build_on_a_real_full_disk_keeps_the_old_lm(tmp_path, capsys):
    (tmp_path / "text.txt").write_text("\n".join(TEXT) + "\n")
    with tmpfs(tmp_path / "disk", size="1m") as disk:
        assert main(build(tmp_path / "text.txt", disk / "lm")) == 0
        before = snapshot(disk)
        capsys.readouterr()
        fill(disk)
        assert main(build(tmp_path / "text.txt", disk / "lm", order=2)) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1, err
        assert err.startswith(f"wav2vec2 lm: error: {disk}"), err
        assert NO_SPACE in err and ".tmp-" not in err, err
        assert snapshot(disk) == before, err
        assert read_info(disk / "lm").order == 3


def test_a_kenlm_failure_is_told_by_its_reason_not_its_last_line():
    # lmplz's threads may print after the exception: the reason is found, not taken last.
    stderr = (
        b"=== 1/5 Counting and sorting n-grams ===\n"
        b"util/file.cc:228 in void util::WriteOrThrow(int, const void*, std::size_t) threw "
        b"FDException because `ret < 1'.\n"
        b"No space left on device in /x/kenlm/zxtrS2 (deleted) while writing 15260 bytes\n"
        b"Last input should have been poison.  The program should end soon with an error.\n"
    )
    assert _reason(stderr) == "No space left on device in /x/kenlm/zxtrS2 (deleted) while " + (
        "writing 15260 bytes"
    )
    assert _reason(b"progress\nplain last line\n") == "plain last line"

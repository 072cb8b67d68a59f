"""Transcripts with times: timestamps from CTC frames, every output format parsed by a real
parser, many inputs (folders, manifests) into --output-dir with resume."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
import srt
import torch
import webvtt

from cli_support import run_cli as run
from cli_support import tone_file as _tone
from hf_reference import make_ctc, save_with_processor
from wav2vec2.decoding import GreedyDecoder
from wav2vec2.formats import FORMATS, cues, record, render
from wav2vec2.inference import Transcript
from wav2vec2.timestamps import Segment, char_segments, word_segments
from wav2vec2.vocab import Vocabulary

pytestmark = pytest.mark.timeout(300)


def test_word_times_come_from_the_frames_of_the_best_path():
    vocab = Vocabulary.from_fairseq_symbols(["|", "A", "B"])
    ids = {t: i for i, t in enumerate(vocab.tokens)}
    path = ["<s>", "A", "A", "<s>", "B", "|", "|", "<s>", "A", "<s>"]
    logits = torch.full((1, len(path), len(vocab.tokens)), -10.0)
    for f, token in enumerate(path):
        logits[0, f, ids[token]] = 10.0
    logits[0, 2, ids["A"]], logits[0, 2, ids["B"]] = 0.0, -0.5  # A's second frame: p ~ 0.62
    (hyp,) = GreedyDecoder(vocab).decode(logits, torch.tensor([len(path)]))
    assert hyp.text == "AB A"
    assert (hyp.frames, hyp.ends) == ((1, 4, 5, 8), (3, 5, 7, 9))
    chars = char_segments(hyp, vocab, logits[0].log_softmax(-1), 0.02)
    assert [c.text for c in chars] == ["A", "B", "|", "A"]
    a, b = chars[0], chars[1]
    assert (a.start, a.end) == pytest.approx((0.02, 0.06)) and b.confidence > 0.999
    assert a.confidence == pytest.approx((1 + 1 / (1 + np.exp(-0.5))) / 2, abs=1e-3)
    words = word_segments(chars, "|")
    assert [(w.text, round(w.start, 3), round(w.end, 3)) for w in words] == [
        ("AB", 0.02, 0.1),
        ("A", 0.16, 0.18),
    ]
    assert words[0].confidence == pytest.approx((a.confidence + b.confidence) / 2)


def transcript(words) -> Transcript:
    segs = tuple(Segment(w, s, e, c) for w, s, e, c in words)
    return Transcript("a.wav", " ".join(w for w, *_ in words), 9.5, None, None, segs, segs)


WORDS = [("HELLO", 0.5, 0.9, 0.9), ("WORLD", 1.0, 1.4, 0.8), ("AGAIN", 3.0, 3.3, 0.7),
         ("THIS", 3.4, 3.6, 0.9), ("IS", 3.7, 3.8, 0.9), ("A", 3.9, 3.95, 0.9),
         ("LONGER", 4.0, 4.4, 0.9), ("SENTENCE", 4.5, 5.0, 0.9), ("THAT", 5.1, 5.3, 0.9),
         ("GOES", 5.4, 5.6, 0.9), ("ON", 5.7, 5.8, 0.9), ("FOR", 5.9, 6.0, 0.9),
         ("A", 6.1, 6.15, 0.9), ("WHILE", 6.2, 6.5, 0.9), ("LONGER", 6.6, 9.0, 0.9)]  # fmt: skip


def test_a_word_ends_midway_between_its_last_peak_and_the_delimiter():
    def seg(text, start, end):
        return Segment(text, start, end, 0.9)

    chars = [seg("H", 0.10, 0.12), seg("I", 0.20, 0.22), seg("|", 0.42, 0.60),
             seg("Y", 0.70, 0.72), seg("O", 0.74, 0.76), seg("|", 0.76, 0.78),
             seg("U", 0.90, 0.92)]  # fmt: skip
    words = word_segments(chars, "|")
    assert [(w.text, w.start, round(w.end, 3)) for w in words] == [
        ("HI", 0.10, 0.32),  # the sound ends somewhere in 0.22-0.42: the middle
        ("YO", 0.70, 0.76),  # the delimiter follows at once
        ("U", 0.90, 0.92),  # no delimiter after it: its last letter's end
    ]


def test_cues_break_at_pauses_length_and_duration():
    got = cues(transcript(WORDS).words)
    assert got[0].text == "HELLO WORLD"  # a 1.6 s pause follows
    assert all(len(c.text) <= 42 and c.end - c.start <= 5.0 for c in got)
    assert " ".join(c.text for c in got) == " ".join(w for w, *_ in WORDS)


def test_every_format_parses_with_a_real_parser():
    t = transcript(WORDS)
    subs = list(srt.parse(render(t, "srt")))
    assert subs[0].content == "HELLO WORLD"
    assert subs[0].start.total_seconds() == 0.5 and subs[0].end.total_seconds() == 1.4
    assert " ".join(s.content for s in subs) == t.text
    vtt = webvtt.from_buffer(io.StringIO(render(t, "vtt")))
    assert [c.text for c in vtt] == [s.content for s in subs]
    assert vtt[0].start == "00:00:00.500" and vtt[0].end == "00:00:01.400"
    doc = json.loads(render(t, "json", chars=True))
    assert doc["words"][1] == {"word": "WORLD", "start": 1.0, "end": 1.4, "confidence": 0.8}
    assert doc["chars"][0]["char"] == "HELLO" and doc["duration"] == 9.5
    assert json.loads(render(t, "jsonl")) == record(t)
    rows = list(csv.DictReader(io.StringIO(render(t, "tsv")), delimiter="\t"))
    assert rows[2] == {"start": "3.000", "end": "3.300", "text": "AGAIN", "confidence": "0.7000"}
    assert render(t, "txt") == t.text + "\n"
    assert set(FORMATS) == {"txt", "json", "jsonl", "srt", "vtt", "tsv"}


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return save_with_processor(make_ctc("lv60k_like"), tmp_path_factory.mktemp("hf"))


def test_a_folder_into_output_dir_resumes_and_counts(capsys, tmp_path, model):
    audio = tmp_path / "audio"
    (audio / "spk1").mkdir(parents=True)
    (audio / "spk2").mkdir()
    _tone(audio / "spk1" / "a.wav")
    _tone(audio / "spk2" / "a.flac", 2.0)  # the same name in another folder: no collision
    (audio / "spk2" / "broken.wav").write_bytes(b"not audio at all")
    out = tmp_path / "out"
    argv = ["transcribe", model, audio, "--output-dir", out, "--format", "srt"]
    code, stdout, err = run(capsys, *argv)
    assert code == 2 and stdout == ""
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.srt")) == [
        "spk1/a.srt",
        "spk2/a.srt",
    ]
    lines = err.strip().splitlines()
    assert "broken.wav" in lines[0] and "unreadable audio" in lines[0]
    assert "2 transcribed, 0 skipped (output exists), 1 failed" in lines[-1]
    list(srt.parse((out / "spk2" / "a.srt").read_text()))  # parses
    before = (out / "spk1" / "a.srt").stat().st_mtime_ns
    code, _, err = run(capsys, *argv)
    assert "0 transcribed, 2 skipped (output exists), 1 failed" in err
    assert (out / "spk1" / "a.srt").stat().st_mtime_ns == before  # not rewritten
    assert not [p for p in out.rglob(".tmp-*")]


def test_a_manifest_is_an_input(capsys, tmp_path, model):
    _tone(tmp_path / "x.wav")
    _tone(tmp_path / "y.wav", 1.5)
    (tmp_path / "list.tsv").write_text(f"{tmp_path}\nx.wav\t16000\ny.wav\t24000\n")
    code, out, _ = run(capsys, "transcribe", model, tmp_path / "list.tsv", "--format", "jsonl")
    records = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [r["path"] for r in records] == [
        str(tmp_path / n) for n in "xy"[:2] and ("x.wav", "y.wav")
    ]
    assert all({"path", "text", "duration", "words"} <= set(r) for r in records)
    assert records[1]["duration"] == 1.5


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--format", "srt"], "--format srt writes one document per input: give --output-dir"),
        (["--beam", "5"], "--beam need --lm DIR"),
        (["--lexicon-free", "--hotword", "CAT"], "--lexicon-free, --hotword need --lm DIR"),
        (["--json", "--format", "srt"], "--json means --format jsonl"),
        (["--chunk-seconds", "0"], "--chunk-seconds must be positive"),
    ],
)
def test_flag_mistakes_are_one_line(capsys, tmp_path, model, extra, message):
    a, b = _tone(tmp_path / "a.wav"), _tone(tmp_path / "b.wav")
    code, out, err = run(capsys, "transcribe", model, a, b, *extra)
    assert code == 2 and out == "" and message in err and len(err.strip().splitlines()) == 1


def test_two_inputs_that_would_write_one_output_are_refused(capsys, tmp_path, model):
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    a, b = _tone(tmp_path / "one" / "a.wav"), _tone(tmp_path / "two" / "a.wav")
    code, _, err = run(capsys, "transcribe", model, a, b, "--output-dir", tmp_path / "o")
    assert code == 2 and "two inputs would write the same output a" in err

"""CTC forced alignment: the Viterbi path against brute force and against the plain
Viterbi, its memory bound, times on a hand-made emission, every format through a real
parser, one-line errors, a manifest with a bad file, and the command end to end."""

from __future__ import annotations

import csv
import io
import itertools
import json
import tracemalloc

import numpy as np
import pytest
import srt
import torch
import webvtt
from praatio import textgrid

from cli_support import run_cli, tone_file
from hf_reference import make_ctc, save_with_processor
from wav2vec2 import alignment
from wav2vec2.alignment import Alignment, align, forced_align, label_ids, min_frames
from wav2vec2.errors import Wav2Vec2Error
from wav2vec2.formats import ALIGN_FORMATS, render_alignment
from wav2vec2.inference import Wav2Vec2Inference
from wav2vec2.vocab import Vocabulary

pytestmark = pytest.mark.timeout(300)
NEG = -1e30  # stands for -inf in the reference, where -inf - -inf would be NaN


def labels_of(states: np.ndarray, targets: list[int], blank: int) -> tuple[int, ...]:
    """Each frame's label from its state (2j+1: label j, even: a blank)."""
    return tuple(targets[s // 2] if s % 2 else blank for s in states.tolist())


def brute_force(lp: torch.Tensor, targets: list[int], blank: int):
    """Every label sequence of the frames' length that collapses to ``targets`` (merge
    repeats, drop blanks): the best one and its score."""
    T, V = lp.shape
    best, arg = -np.inf, None
    for path in itertools.product(range(V), repeat=T):
        merged = [x for i, x in enumerate(path) if i == 0 or x != path[i - 1]]
        if [x for x in merged if x != blank] == targets:
            score = float(lp[torch.arange(T), torch.tensor(path)].sum())
            if score > best:
                best, arg = score, path
    return best, arg


@pytest.mark.parametrize(
    "seed, targets",
    [(0, [1, 2]), (1, [1, 1]), (2, [2, 2, 1]), (3, [1, 2, 1]), (4, [3, 3, 3]),
     (5, [1, 3, 3, 2]), (6, [2]), (7, [3, 1, 1])],
)  # fmt: skip
def test_the_path_is_the_best_of_all_ctc_paths(seed, targets):
    gen = torch.Generator().manual_seed(seed)
    lp = (2 * torch.randn(7, 4, generator=gen)).log_softmax(-1)  # blank 0, letters 1..3
    best, arg = brute_force(lp, targets, 0)
    for k in (1, 2, 3, 7):  # segments of every size, down to one frame
        path = forced_align(lp, targets, blank=0, segment_frames=k)
        assert path.log_prob == pytest.approx(best, abs=1e-5)
        assert labels_of(path.states.numpy(), targets, 0) == arg


def plain_viterbi(lp: torch.Tensor, targets: list[int], blank: int) -> np.ndarray:
    """The textbook search (torchaudio's forced_align): S = 2L+1 interleaved states, a
    T x S backpointer table; ties stay, then take the nearer predecessor."""
    ext = [blank] + [x for y in targets for x in (y, blank)]
    T, S = lp.shape[0], len(ext)
    score = np.full(S, NEG)
    score[:2] = lp[0, ext[:2]].numpy()
    back = np.zeros((T, S), dtype=np.int64)
    for t in range(1, T):
        new = np.full(S, NEG)
        for s in range(S):
            moves = [0, 1] + ([2] if s % 2 and s > 1 and ext[s] != ext[s - 2] else [])
            best = max((m for m in moves if s - m >= 0), key=lambda m: (score[s - m], -m))
            new[s], back[t, s] = score[s - best] + float(lp[t, ext[s]]), best
        score = new
    states = [S - 1 if score[S - 1] >= score[S - 2] else S - 2]
    for t in range(T - 1, 0, -1):
        states.append(states[-1] - back[t, states[-1]])
    return np.array(states[::-1])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_bounded_memory_path_is_the_plain_path(seed, monkeypatch):
    gen = torch.Generator().manual_seed(seed)
    T, L = 120, 40
    lp = torch.randn(T, 6, generator=gen).log_softmax(-1)
    targets = torch.randint(1, 3, (L,), generator=gen).tolist()  # 2 letters: many repeats
    plain = plain_viterbi(lp, targets, 0)
    for k in (1, 2, 7, 50, T):  # k = T: one segment, the plain search itself
        assert np.array_equal(forced_align(lp, targets, 0, k).states.numpy(), plain), k
    monkeypatch.setattr(alignment, "PLAIN_BYTES", 100)  # the automatic size: segments
    assert alignment._segment_frames(T, L) < T
    assert np.array_equal(forced_align(lp, targets, 0).states.numpy(), plain)


def test_memory_stays_far_below_the_plain_backpointers(monkeypatch):
    monkeypatch.setattr(alignment, "PLAIN_BYTES", 2**20)  # as an hour is to the default
    gen = torch.Generator().manual_seed(0)
    T, L = 4000, 800  # the plain table: T x (2L+1) bytes = 6.1 MiB
    lp = (torch.randn(T, 32, generator=gen) + 4 * (torch.arange(32) == 0)).log_softmax(-1)
    targets = torch.randint(4, 32, (L,), generator=gen).tolist()
    tracemalloc.start()
    forced_align(lp, targets, 0)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    k = alignment._segment_frames(T, L)
    assert k < T and peak < 2 * 6 * L * k  # twice the module doc's 6 L k bytes, at most
    assert peak < T * (2 * L + 1) / 8


def test_too_few_frames_and_unknown_letters_are_one_line():
    vocab = Vocabulary.from_fairseq_symbols(["|", "A", "B"])
    assert min_frames([5, 5, 6, 6]) == 6  # a blank between each pair of repeats
    lp = torch.zeros(5, len(vocab)).log_softmax(-1)
    with pytest.raises(Wav2Vec2Error, match="too short for the text: 5 frames, .* at least 6"):
        forced_align(lp, [5, 5, 6, 6], vocab.blank)
    with pytest.raises(Wav2Vec2Error, match=r"not in the vocabulary: ',C'") as info:
        label_ids(vocab.normalize("ab, c"), vocab)
    assert "\n" not in str(info.value)
    with pytest.raises(Wav2Vec2Error, match="the text is empty"):
        label_ids(vocab.normalize("  \n "), vocab)


def hand_made() -> tuple[Vocabulary, torch.Tensor]:
    """Emissions whose best path is known: each frame's label at +10, the rest at -10;
    frame 2's A is unsure (p = 0.62 against B)."""
    vocab = Vocabulary.from_fairseq_symbols(["|", "A", "B"])
    ids = {t: i for i, t in enumerate(vocab.tokens)}
    path = ["<s>", "A", "A", "<s>", "A", "B", "|", "|", "<s>", "A", "<s>"]
    logits = torch.full((len(path), len(vocab)), -10.0)
    for f, token in enumerate(path):
        logits[f, ids[token]] = 10.0
    logits[2, ids["A"]], logits[2, ids["B"]] = 0.0, -0.5
    return vocab, logits.log_softmax(-1)


def test_word_and_letter_times_on_a_known_emission():
    vocab, lp = hand_made()
    text = vocab.normalize("aab  a")
    log_prob, words, chars = align(lp, label_ids(text, vocab), vocab, 0.02)
    assert text == "AAB A"
    runs = [(c.text, round(c.start / 0.02), round(c.end / 0.02)) for c in chars]
    assert runs == [("A", 1, 3), ("A", 4, 5), ("B", 5, 6), ("|", 6, 8), ("A", 9, 10)]
    assert [(w.text, round(w.start, 3), round(w.end, 3)) for w in words] == [
        ("AAB", 0.02, 0.12),
        ("A", 0.18, 0.2),
    ]
    assert chars[0].confidence == pytest.approx((1 + 1 / (1 + np.exp(-0.5))) / 2, abs=1e-3)
    assert chars[1].confidence > 0.999
    assert words[0].confidence == pytest.approx(sum(c.confidence for c in chars[:3]) / 3)
    assert log_prob == pytest.approx(float(np.log(1 / (1 + np.exp(-0.5)))), abs=1e-3)


def test_every_format_parses_with_a_real_parser(tmp_path):
    vocab, lp = hand_made()
    _, words, chars = align(lp, label_ids("AAB A", vocab), vocab, 0.02)
    a = Alignment("a.wav", "AAB A", 0.25, -0.5, words, chars)
    doc = json.loads(render_alignment(a, "json"))
    assert doc["words"][0] == {"word": "AAB", "start": 0.02, "end": 0.12,
                               "confidence": round(words[0].confidence, 4)}  # fmt: skip
    assert [c["char"] for c in doc["chars"]] == ["A", "A", "B", "|", "A"]
    head = [doc[k] for k in ("path", "text", "duration", "log_prob")]
    assert head == ["a.wav", "AAB A", 0.25, -0.5]
    rows = list(csv.DictReader(io.StringIO(render_alignment(a, "tsv")), delimiter="\t"))
    assert rows[1] == {"start": "0.180", "end": "0.200", "text": "A", "confidence": "1.0000"}
    rows = list(csv.DictReader(io.StringIO(render_alignment(a, "tsv", chars=True)), delimiter="\t"))
    assert [r["text"] for r in rows] == ["A", "A", "B", "|", "A"]
    (cue,) = srt.parse(render_alignment(a, "srt"))
    assert (cue.content, cue.start.total_seconds(), cue.end.total_seconds()) == ("AAB A", 0.02, 0.2)
    (vtt,) = webvtt.from_buffer(io.StringIO(render_alignment(a, "vtt")))
    assert (vtt.text, vtt.start, vtt.end) == ("AAB A", "00:00:00.020", "00:00:00.200")
    (tmp_path / "a.TextGrid").write_text(render_alignment(a, "textgrid"))
    grid = textgrid.openTextgrid(str(tmp_path / "a.TextGrid"), includeEmptyIntervals=False)
    assert grid.tierNames == ("words", "chars") and grid.maxTimestamp == 0.25
    assert [tuple(e) for e in grid.getTier("words").entries] == [
        (0.02, 0.12, "AAB"),
        (0.18, 0.2, "A"),
    ]
    assert [e.label for e in grid.getTier("chars").entries] == ["A", "A", "B", "|", "A"]
    assert set(ALIGN_FORMATS) == {"json", "tsv", "srt", "vtt", "textgrid"}


# -- the engine and the command, with a tiny random model ----------------------------------
@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return save_with_processor(make_ctc("lv60k_like"), tmp_path_factory.mktemp("hf"))


def test_the_command_writes_what_the_engine_aligns(capsys, tmp_path, model):
    wav = tone_file(tmp_path / "a.wav")
    (tmp_path / "a.txt").write_text("hello\nworld\n")  # a file: its lines, joined
    code, out, err = run_cli(capsys, "align", model, wav, tmp_path / "a.txt")
    assert code == 0 and err == ""
    doc = json.loads(out)
    ours = Wav2Vec2Inference.from_pretrained(model).align(wav, "Hello world")
    assert doc["text"] == ours.text == "HELLO WORLD"
    assert [w["word"] for w in doc["words"]] == ["HELLO", "WORLD"]
    assert doc["words"] == [w.to_dict("word") for w in ours.words]
    assert doc["log_prob"] == round(ours.log_prob, 3) < 0
    ends = [c["end"] for c in doc["chars"]]
    assert ends == sorted(ends) and 0 < ends[-1] <= doc["duration"] == 1.0
    code, out, _ = run_cli(capsys, "align", model, wav, "hello world", "--format", "vtt")
    assert code == 0 and [c.text for c in webvtt.from_buffer(io.StringIO(out))] == ["HELLO WORLD"]
    chunked = ["--chunk-seconds", "0.3", "--context-seconds", "0.1"]  # 4 chunks, stitched
    code, out, _ = run_cli(capsys, "align", model, wav, "hello world", *chunked)
    assert code == 0 and json.loads(out)["chars"][-1]["end"] <= 1.0


@pytest.mark.parametrize(
    "seconds, text, message",
    [(1.0, "HELLO, WORLD", "a.wav: the text has characters not in the vocabulary: ','"),
     (0.02, "HELLO WORLD", "a.wav: the audio is too short for the text: 7 frames, the text "
      "needs at least 12")],
)  # fmt: skip
def test_bad_text_and_short_audio_are_one_line(capsys, tmp_path, model, seconds, text, message):
    wav = tone_file(tmp_path / "a.wav", seconds)
    code, out, err = run_cli(capsys, "align", model, wav, text)
    assert code == 2 and out == "" and message in err and len(err.strip().splitlines()) == 1


def test_a_manifest_with_a_bad_file_aligns_the_others(capsys, tmp_path, model):
    tone_file(tmp_path / "a.wav")
    tone_file(tmp_path / "b.wav", 1.5)
    (tmp_path / "bad.wav").write_bytes(b"not audio at all")
    rows = "".join(f"{n}\t16000\n" for n in ("a.wav", "bad.wav", "b.wav"))
    (tmp_path / "dev.tsv").write_text(f"{tmp_path}\n{rows}")
    (tmp_path / "dev.wrd").write_text("HELLO WORLD\nA B\nGOOD BYE\n")
    out = tmp_path / "out"
    argv = ["align", model, tmp_path / "dev.tsv", "--output-dir", out, "--format", "textgrid"]
    code, stdout, err = run_cli(capsys, *argv)
    assert code == 2 and stdout == ""
    assert sorted(p.name for p in out.iterdir()) == ["a.TextGrid", "b.TextGrid"]
    lines = err.strip().splitlines()
    assert len(lines) == 2 and "bad.wav" in lines[0] and "unreadable audio" in lines[0]
    assert "2 aligned, 0 skipped (output exists), 1 failed" in lines[-1]
    grid = textgrid.openTextgrid(str(out / "b.TextGrid"), includeEmptyIntervals=False)
    assert [e.label for e in grid.getTier("words").entries] == ["GOOD", "BYE"]
    code, _, err = run_cli(capsys, *argv)  # a rerun skips what is done
    assert code == 2 and "0 aligned, 2 skipped (output exists), 1 failed" in err
    assert not list(out.glob(".tmp-*"))


@pytest.mark.parametrize(
    "args, message",
    [(["dev.tsv", "HELLO"], "give no TEXT"), (["dev.tsv"], "give --output-dir DIR"),
     (["a.wav"], "give the transcript")],
)  # fmt: skip
def test_flag_mistakes_are_one_line(capsys, tmp_path, model, args, message):
    code, out, err = run_cli(capsys, "align", model, *[tmp_path / args[0], *args[1:]])
    assert code == 2 and out == "" and message in err and len(err.strip().splitlines()) == 1


def test_a_manifest_without_its_transcripts_is_one_line(capsys, tmp_path):
    tone_file(tmp_path / "a.wav")
    (tmp_path / "dev.tsv").write_text(f"{tmp_path}\na.wav\t16000\na.wav\t16000\n")
    argv = ["align", "no-model-needed", tmp_path / "dev.tsv", "--output-dir", tmp_path / "o"]
    code, _, err = run_cli(capsys, *argv)
    assert code == 2 and "no transcripts: expected dev.wrd beside the manifest" in err
    (tmp_path / "dev.wrd").write_text("HELLO\n")
    code, _, err = run_cli(capsys, *argv)
    assert code == 2 and "dev.wrd: 1 lines for 2 manifest entries" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "o").exists()

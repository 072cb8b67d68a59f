"""Beam search beyond the lexicon: lexicon-free search with the word LM, hotwords, and the
weights `lm tune` picks on dev (tuned.json), which evaluate and transcribe then use."""

from __future__ import annotations

import json

import pytest
import torch

from cli_support import run_cli as run
from cli_support import tone_file
from hf_reference import make_ctc, save_with_processor
from lm_support import TEXT, VOCAB, build_lm, emissions, spell
from wav2vec2 import beam_search
from wav2vec2.beam_search import WINDOW, BeamSearchConfig, LexiconBeamDecoder
from wav2vec2.cli import main
from wav2vec2.decoding import GreedyDecoder
from wav2vec2.errors import Wav2Vec2Error
from wav2vec2.hotwords import parse_hotwords
from wav2vec2.inference import Emission, Wav2Vec2Inference
from wav2vec2.loading import load_pretrained

lm_dir = pytest.fixture(scope="module", name="lm_dir")(build_lm)

SENTENCE = "THE CAT SAT ON THE MAT"
# The M of MAT sounds as much like an R: RAT is a lexicon word too, and the LM prefers MAT.
TIE = {14: {"M": 0.45, "R": 0.45}}


def decode(lm_dir, text, confusions=None, **config):
    logits = emissions(spell(text, confusions))
    decoder = LexiconBeamDecoder(VOCAB, lm_dir, BeamSearchConfig(**config))
    (hyp,) = decoder.decode(logits, torch.tensor([logits.shape[1]]))
    return hyp


def test_lexicon_free_search_emits_a_word_the_lexicon_lacks(lm_dir):
    # KAT is spelled clearly, but the lexicon has no KAT: the lexicon search cannot say it.
    assert "KAT" not in decode(lm_dir, "THE KAT SAT").text.split()
    free = decode(lm_dir, "THE KAT SAT", lexicon_free=True)
    assert free.text == "THE KAT SAT"
    # Its path is the letters' own, frames and ends included (word times come from them).
    logits = emissions(spell("THE KAT SAT"))
    (greedy,) = GreedyDecoder(VOCAB).decode(logits, torch.tensor([logits.shape[1]]))
    assert (free.tokens, free.frames, free.ends) == (greedy.tokens, greedy.frames, greedy.ends)
    # The word LM still decides where the acoustics hesitate: greedy would say KAT and RAT.
    hesitant = {3: {"K": 0.5, "C": 0.4}, **TIE}
    assert decode(lm_dir, SENTENCE, hesitant, lexicon_free=True).text == SENTENCE
    config = BeamSearchConfig(lexicon_free=True)
    assert LexiconBeamDecoder(VOCAB, lm_dir, config).describe()["decoder"] == (
        "lexicon-free beam search"
    )


def test_lexicon_free_search_forgets_the_states_of_dead_hypotheses(lm_dir):
    # Its LM is asked about every letter: the states it keeps must not grow with the input.
    text = " ".join(TEXT[:5] * 4)
    logits = emissions(spell(text))
    assert logits.shape[1] > 8 * WINDOW
    decoder = LexiconBeamDecoder(VOCAB, lm_dir, BeamSearchConfig(lexicon_free=True))
    held, window_done = [], decoder.lm.window_done

    def count():
        held.append(len(decoder.lm.info) + len(decoder.lm.old_info))
        window_done()

    decoder.lm.window_done = count
    (hyp,) = decoder.decode(logits, torch.tensor([logits.shape[1]]))
    assert hyp.text == text  # no live state was forgotten
    assert max(held) < 3 * held[0]  # kept: two windows' worth, not all nine


@pytest.mark.parametrize("lexicon_free", [False, True])
def test_long_input_is_committed_as_it_goes_with_the_same_result(lm_dir, lexicon_free, monkeypatch):
    # Past LOOK_BACK frames the search commits the best path and forgets what lies before
    # it (bounded memory): the text and every letter's frames equal the one-shot search.
    text = " ".join(TEXT[:5] * 6)
    confusions = {i: {"M": 0.5, "R": 0.4} for i in range(14, 600, 97)}  # no exact ties
    logits = emissions(spell(text, confusions))
    assert logits.shape[1] > 10 * WINDOW
    config = BeamSearchConfig(lexicon_free=lexicon_free)
    lengths = torch.tensor([logits.shape[1]])
    monkeypatch.setattr(beam_search, "LOOK_BACK", 10**9)
    (whole,) = LexiconBeamDecoder(VOCAB, lm_dir, config).decode(logits, lengths)
    monkeypatch.setattr(beam_search, "LOOK_BACK", 150)
    decoder = LexiconBeamDecoder(VOCAB, lm_dir, config)
    commits, prune = [], decoder._search.prune
    decoder._search = Spy(decoder._search, prune=lambda n: (commits.append(n), prune(n)))
    (parts,) = decoder.decode(logits, lengths)
    assert len(commits) >= 4
    assert parts == whole
    if lexicon_free:  # the look-ahead table holds lexicon prefixes only, not every guess
        assert len(decoder.lm.looks) <= sum(len(w) for w in decoder.words)


class Spy:
    """An object's attributes, some replaced (flashlight's classes take no new attributes)."""

    def __init__(self, inner, **replaced):
        self._inner, self._replaced = inner, replaced

    def __getattr__(self, name):
        return self._replaced.get(name) or getattr(self._inner, name)


@pytest.mark.parametrize("lexicon_free", [False, True])
def test_a_hotword_flips_a_decision(lm_dir, lexicon_free):
    def said(confusions=TIE, hotwords=()):
        hyp = decode(lm_dir, SENTENCE, confusions, lexicon_free=lexicon_free, hotwords=hotwords)
        return hyp.text.split()[-1]

    assert said() == "MAT"
    assert said(hotwords=(("RAT", 10.0),)) == "RAT"
    assert said(hotwords=(("RAT", 0.5),)) == "MAT"  # a small bonus does not outweigh the LM
    assert said(hotwords=(("MAT", -10.0),)) == "RAT"  # a negative one keeps a word out
    # A hotword the lexicon lacks joins it: ZAT can come out of the lexicon search too.
    zat = {14: {"M": 0.45, "Z": 0.45}}
    assert said(zat) == "MAT"
    assert said(zat, hotwords=(("ZAT", 10.0),)) == "ZAT"


def test_hotword_mistakes_are_clear(lm_dir):
    assert parse_hotwords(["CAT", "DOG:2.5", "RAT:-1"]) == (
        ("CAT", 10.0), ("DOG", 2.5), ("RAT", -1.0),
    )  # fmt: skip
    for specs, message in [
        (["NEW YORK"], "--hotword 'NEW YORK': expected one word, as WORD or WORD:WEIGHT"),
        ([":3"], "--hotword ':3': expected one word"),
        (["CAT:high"], "--hotword 'CAT:high': the weight must be a number"),
        (["CAT", "CAT:2"], "--hotword CAT is given more than once"),
    ]:
        with pytest.raises(Wav2Vec2Error, match=message):
            parse_hotwords(specs)
    unknown = "hotword 'CAFÉ' has letters the model cannot emit: 'É'$"
    with pytest.raises(Wav2Vec2Error, match=unknown):
        LexiconBeamDecoder(VOCAB, lm_dir, BeamSearchConfig(hotwords=(("CAFÉ", 10.0),)))
    lower = r"hotword 'cat' has letters the model cannot emit: 'act' \(the model spells in upper"
    with pytest.raises(Wav2Vec2Error, match=lower + r" case: try 'CAT'\)"):
        LexiconBeamDecoder(VOCAB, lm_dir, BeamSearchConfig(hotwords=(("cat", 10.0),)))


@pytest.fixture(scope="module")
def dev_set(tmp_path_factory, lm_dir):
    """A tiny CTC model, a dev split of two utterances whose emissions are hand-made (the
    model's own would be noise), and a copy of the LM to tune."""
    tmp = tmp_path_factory.mktemp("tune")
    model = save_with_processor(make_ctc("lv60k_like"), tmp / "model")
    vocab = load_pretrained(model).vocab
    data = tmp / "data"
    data.mkdir()
    utterances = {"a.wav": (SENTENCE, TIE), "b.wav": ("A CAT AND A DOG", None)}
    for name in utterances:
        tone_file(data / name)
    (data / "dev.tsv").write_text(f"{data}\n" + "".join(f"{n}\t16000\n" for n in utterances))
    (data / "dev.wrd").write_text("".join(f"{text}\n" for text, _ in utterances.values()))
    logits = {
        str(data / name): emissions(spell(text, confusions), vocab)[0]
        for name, (text, confusions) in utterances.items()
    }
    return model, data, logits


@pytest.fixture
def hand_made(monkeypatch, dev_set):
    """The engine's emissions replaced by the dev set's hand-made ones."""
    logits = dev_set[2]

    def fake(self, audios, bar):
        for audio in audios:
            yield Emission(str(audio), 1.0, logits[str(audio)])

    monkeypatch.setattr(Wav2Vec2Inference, "_emissions", fake)


def test_tuned_weights_are_used_unless_given(capsys, tmp_path, lm_dir, dev_set, hand_made):
    model, data, _ = dev_set
    lm = tmp_path / "lm"
    assert main(["lm", "build", str(lm_dir.parent / "text.txt"), "--out", str(lm)]) == 0
    # A word score of -20 drops every word; 0 keeps them: the tuning must pick 0.
    code, out, _ = run(capsys, "lm", "tune", model, "--data", data, "--lm", lm,
                       "--grid", "1:-20,1:0,2:0")  # fmt: skip
    assert code == 0, out
    assert f"best: lm_weight=1 word_score=0 (dev WER 0.00%) -> {lm / 'tuned.json'}" in out
    tuned = json.loads((lm / "tuned.json").read_text())
    assert (tuned["lm_weight"], tuned["word_score"], tuned["search"]) == (1.0, 0.0, "lexicon")
    assert tuned["model"] == str(model.resolve()) and tuned["split"] == "dev"
    assert [(p["lm_weight"], p["word_score"], p["wer"]) for p in tuned["grid"]] == [
        (1.0, -20.0, 1.0), (1.0, 0.0, 0.0), (2.0, 0.0, 0.0),
    ]  # fmt: skip

    def evaluate(*flags):
        out = tmp_path / f"eval{len(list(tmp_path.glob('eval*')))}"
        code, _, err = run(capsys, "evaluate", model, "--data", data, "--split", "dev",
                           "--lm", lm, "--out", out, *flags)  # fmt: skip
        assert code == 0, err
        notes = [line for line in err.splitlines() if line.startswith("wav2vec2: ")]
        decoding = json.loads((out / "dev_summary.json").read_text())["decoding"]
        return notes, decoding

    notes, decoding = evaluate()
    used = f"wav2vec2: using tuned weights from {lm / 'tuned.json'}"
    assert notes == [f"{used}: lm_weight=1, word_score=0"]
    assert (decoding["lm_weight"], decoding["word_score"]) == (1.0, 0.0)
    assert decoding["weights_from"] == str((lm / "tuned.json").resolve())  # where they came from
    # Explicit flags win, one by one.
    notes, decoding = evaluate("--word-score", "2")
    assert notes == [f"{used}: lm_weight=1 (word_score as given)"]
    assert (decoding["lm_weight"], decoding["word_score"]) == (1.0, 2.0)
    tuned_file = (lm / "tuned.json").resolve()
    assert decoding["weights_from"] == f"{tuned_file} (lm_weight); given (word_score)"
    notes, decoding = evaluate("--word-score", "2", "--lm-weight", "0.5")
    assert notes == [] and decoding["weights_from"] == "given"
    notes, decoding = evaluate("--word-score", "2", "--lexicon-free")  # nothing tuned for it
    assert decoding["weights_from"] == "defaults (lm_weight); given (word_score)"
    # Weights tuned for the lexicon search are not the lexicon-free search's.
    notes, decoding = evaluate("--lexicon-free", "--hotword", "RAT:3")
    assert notes == [
        f"wav2vec2: not using {lm / 'tuned.json'}: its weights were tuned for lexicon search, "
        "not lexicon-free (tune them with `wav2vec2 lm tune --lexicon-free`); using "
        "lm_weight=1, word_score=1"
    ]
    assert decoding["decoder"] == "lexicon-free beam search"
    assert decoding["hotwords"] == [["RAT", 3]] and decoding["weights_from"] == "defaults"
    # transcribe reads them too, and so does the Python API when no settings are given.
    code, out, err = run(capsys, "transcribe", model, data / "a.wav", "--lm", lm)
    assert (code, out) == (0, f"{SENTENCE}\n")
    assert err.splitlines() == [f"{used}: lm_weight=1, word_score=0"]
    engine = Wav2Vec2Inference.from_pretrained(model, lm=lm)
    assert engine.decoder.config.word_score == 0.0
    # Weights tuned for another model are still used, and the note says so.
    (lm / "tuned.json").write_text(json.dumps({**tuned, "model": "/elsewhere/model"}))
    notes, _ = evaluate()
    assert notes == [f"{used}: lm_weight=1, word_score=0; they were tuned for another model, "
                     "/elsewhere/model"]  # fmt: skip
    # They belong to the LM: rebuilding it deletes them.
    assert main(["lm", "build", str(lm_dir.parent / "text.txt"), "--out", str(lm)]) == 0
    assert not (lm / "tuned.json").exists()


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--grid", "1:0", "--lm-weights", "1"], "--grid lists the points itself: it cannot go"),
        (["--grid", "1-0"], "--grid '1-0': expected LM_WEIGHT:WORD_SCORE points separated by"),
        (["--lm-weights", "1,x"], "--lm-weights '1,x': expected numbers separated by commas"),
        (["--beam", "0"], "beam must be at least 1, got 0"),
    ],
)
def test_tune_mistakes_are_one_line(capsys, lm_dir, dev_set, flags, message):
    model, data, _ = dev_set
    code, out, err = run(capsys, "lm", "tune", model, "--data", data, "--lm", lm_dir, *flags)
    assert code == 2 and out == "" and message in err and len(err.strip().splitlines()) == 1
    assert not (lm_dir / "tuned.json").exists()


def test_a_bad_tuned_json_is_one_line(capsys, tmp_path, lm_dir, dev_set):
    model, data, _ = dev_set
    lm = tmp_path / "lm"
    assert main(["lm", "build", str(lm_dir.parent / "text.txt"), "--out", str(lm)]) == 0
    (lm / "tuned.json").write_text("{not json")
    code, _, err = run(capsys, "transcribe", model, data / "a.wav", "--lm", lm)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert f"{lm / 'tuned.json'}: not a tuned-weights file (JSONDecodeError" in err
    assert "run `wav2vec2 lm tune` again or delete it" in err

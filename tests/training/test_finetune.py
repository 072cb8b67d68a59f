"""`wav2vec2 finetune` and `wav2vec2 evaluate` on a tiny generated labeled set."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import transformers

from training_support import finetune_argv, settings_file
from wav2vec2.audio import load_audio
from wav2vec2.cli import main
from wav2vec2.config import SMALL
from wav2vec2.inference import Wav2Vec2Inference
from wav2vec2.loading import load_model
from wav2vec2.metrics import error_counts, rates
from wav2vec2.training.metrics import read_log
from wav2vec2.training.recipes import finetune_run_config
from wav2vec2.training.tasks import CTCTask
from wav2vec2.vocab import Vocabulary

FT = {
    "log_interval": 5,
    "valid_interval": 20,
    "save_interval": 20,
    "data.max_tokens": 400000,
    "data.num_workers": 0,
    "optim.lr": 0.003,
    "optim.update_freq": 1,
    "model.masking.time_prob": 0.1,
    "model.masking.channel_prob": 0.0,
    "model.transformer.layerdrop": 0.0,
}


@pytest.fixture(scope="module")
def finetuned(tone_corpus, tiny_pretrained, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ft")
    out = tmp / "run"
    config = settings_file(tmp, False, **FT, freeze_updates=0)
    assert main(finetune_argv(tone_corpus, tiny_pretrained, out, 80, config)) == 0
    return out


def test_finetune_lowers_ctc_loss_and_emits_letters(finetuned, tone_corpus):
    train = [r for r in read_log(finetuned / "log.jsonl") if r["split"] == "train"]
    valid = [r for r in read_log(finetuned / "log.jsonl") if r["split"] == "valid"]
    assert train[-1]["loss"] < 0.5 * train[0]["loss"]
    assert valid[-1]["empty_hypotheses"] < 0.5 and valid[-1]["blank_frames"] < 0.95
    assert valid[-1]["cer"] < valid[0]["cer"] or valid[-1]["cer"] < 0.5
    engine = Wav2Vec2Inference.from_pretrained(finetuned / "checkpoints" / "best")
    texts = [t.text for t in engine.transcribe(sorted(tone_corpus.glob("valid*.wav")))]
    assert sum(bool(t) for t in texts) >= 6  # non-blank output
    assert set("".join(texts)) <= set("ABCDE ")


def test_freeze_schedule_and_frozen_feature_encoder(tone_corpus, tiny_pretrained, tmp_path):
    out = tmp_path / "run"
    # with speed perturbation on, so its wiring through a resumed run is exercised too
    settings = {**FT, "freeze_updates": 3, "save_interval": 3, "data.speed_perturb": [0.9, 1.1]}
    config = settings_file(tmp_path, False, **settings)
    assert main(finetune_argv(tone_corpus, tiny_pretrained, out, 3, config)) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["train"]["data"]["speed_perturb"] == [0.9, 1.1]
    assert run["train"]["data"]["labels"] == "ltr"  # the recipe's, without --labels
    init = load_model(tiny_pretrained).state_dict()
    frozen = load_model(out / "checkpoints" / "update_00000003").state_dict()
    for key, value in frozen.items():
        if key.startswith("ctc_head."):
            continue
        assert torch.equal(value, init[key]), f"{key} changed while frozen"
    # resume past the freeze: the Transformer trains, the feature encoder never does
    assert main(finetune_argv(tone_corpus, tiny_pretrained, out, 6, config)) == 0
    later = load_model(out / "checkpoints" / "update_00000006").state_dict()
    assert not torch.equal(later["encoder.layers.0.feed_forward.fc1.weight"],
                           init["encoder.layers.0.feed_forward.fc1.weight"])  # fmt: skip
    for key in later:
        if key.startswith("feature_encoder."):
            assert torch.equal(later[key], init[key]), key
    records = [r for r in read_log(out / "log.jsonl") if r["split"] == "train"]
    assert [(r["update"], r["frozen"]) for r in records] == [(3, 1.0), (5, 0.0), (6, 0.0)]


@pytest.mark.parametrize(
    "preset, time_prob, channel_prob, freeze, updates, lr, layerdrop",
    [
        ("10m", 0.65, 0.25, 10_000, 13_000, 5e-5, 0.1),
        ("1h", 0.65, 0.25, 10_000, 13_000, 5e-5, 0.1),
        ("10h", 0.65, 0.5, 10_000, 20_000, 5e-5, 0.05),
        ("100h", 0.65, 0.5, 0, 80_000, 3e-5, 0.1),
        ("960h", 0.5, 0.1, 0, 320_000, 1e-5, 0.1),
    ],
)
def test_recipe_values(preset, time_prob, channel_prob, freeze, updates, lr, layerdrop, tmp_path):
    letters = Vocabulary.from_fairseq_symbols(list("|ABCDEFGHIJKLMNOPQRSTUVWXYZ'"))
    letters.write_fairseq_dict(tmp_path / "dict.ltr.txt")  # 28 letters + 4 specials
    run = finetune_run_config(SMALL, preset, tmp_path, {})
    m, t = run.model, run.train
    assert (m.masking.time_prob, m.masking.time_length) == (time_prob, 10)
    assert (m.masking.channel_prob, m.masking.channel_length) == (channel_prob, 64)
    assert m.transformer.layerdrop == layerdrop and m.feature_encoder.grad_scale == 0.0
    assert m.quantizer is None and m.vocab_size == 32 and t.data.labels == "ltr"
    assert (t.freeze_updates, t.max_updates, t.optim.lr) == (freeze, updates, lr)
    assert t.schedule.kind == "tri_stage" and t.schedule.phase_ratio == (0.1, 0.4, 0.5)


def test_labels_setting_names_the_label_files_and_dictionary(
    tone_corpus, tiny_pretrained, tmp_path, capsys
):
    config = settings_file(tmp_path, False, **FT)
    argv = finetune_argv(tone_corpus, tiny_pretrained, tmp_path / "run", 1, config)
    # --labels sets data.labels; --set (or --config) may set it too, and wins.
    for extra in (["--labels", "phn"], ["--labels", "ltr", "--set", "data.labels=phn"]):
        assert main([*argv, *extra]) == 2
        assert "dict.phn.txt" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_vocabulary_matches_fairseq_and_transformers(tone_corpus, tmp_path):
    vocab = Vocabulary.from_fairseq_dict(tone_corpus / "dict.ltr.txt")
    # fairseq's Dictionary: specials first, then the file's symbols in order; blank = <s>.
    assert vocab.tokens[:5] == ("<s>", "<pad>", "</s>", "<unk>", "|") and vocab.blank == 0
    assert vocab.encode("AB C") == [vocab.index[c] for c in "AB|C"]
    with pytest.raises(ValueError, match="'Z'"):
        vocab.encode("AZ")
    hf_vocab, specials = vocab.to_hf()
    assert hf_vocab["<pad>"] == 0 and hf_vocab["<s>"] == 1  # ids unchanged, names swapped
    (tmp_path / "vocab.json").write_text(json.dumps(hf_vocab))
    tok = transformers.Wav2Vec2CTCTokenizer(str(tmp_path / "vocab.json"), **specials)
    ids = [0, vocab.index["A"], vocab.index["A"], 0, vocab.index["A"], vocab.index["|"],
           vocab.index["B"], 0]  # fmt: skip
    from wav2vec2.decoding import GreedyDecoder

    logits = torch.nn.functional.one_hot(torch.tensor(ids), len(vocab)).float()[None]
    ours = GreedyDecoder(vocab).decode(logits, torch.tensor([len(ids)]))[0].text
    assert ours == tok.decode(ids) == "AA B"


def test_evaluate_known_pair_and_report(finetuned, tone_corpus, tmp_path, capsys):
    assert rates(error_counts(["THE CAT SAT"], ["THE CAT SAT ON"]))["wer"] == pytest.approx(1 / 3)
    assert rates(error_counts(["AB"], ["AC"]))["cer"] == pytest.approx(1 / 2)
    out = tmp_path / "eval"
    model = finetuned / "checkpoints" / "best"
    assert main(["evaluate", str(model), "--data", str(tone_corpus), "--split", "valid",
                 "--out", str(out)]) == 0  # fmt: skip
    summary = json.loads((out / "valid_summary.json").read_text())
    assert summary["decoding"]["decoder"] == "greedy" and summary["utterances"] == 8
    rows = [line.split("\t") for line in (out / "valid_utterances.tsv").read_text().splitlines()]
    refs, hyps = [r[3] for r in rows[1:]], [r[4] if len(r) > 4 else "" for r in rows[1:]]
    assert summary["metrics"]["wer"] == pytest.approx(rates(error_counts(refs, hyps))["wer"])
    assert f"WER {100 * summary['metrics']['wer']:.2f}%" in capsys.readouterr().out


def test_huggingface_export_transcribes_identically(finetuned, tone_corpus, tmp_path):
    hf_dir = tmp_path / "hf"
    assert main(["convert", "--to", "huggingface", str(finetuned / "checkpoints" / "best"),
                 str(hf_dir)]) == 0  # fmt: skip
    ours = Wav2Vec2Inference.from_pretrained(finetuned / "checkpoints" / "best")
    asr = transformers.pipeline("automatic-speech-recognition", model=str(hf_dir))
    model = transformers.Wav2Vec2ForCTC.from_pretrained(hf_dir).eval()
    processor = transformers.Wav2Vec2Processor.from_pretrained(hf_dir)
    for path in sorted(tone_corpus.glob("valid*.wav")):
        wave = load_audio(path)
        mine = ours.transcribe([path])[0].text
        assert " ".join(asr(wave)["text"].split()) == mine
        with torch.no_grad():
            ids = model(torch.from_numpy(np.asarray(wave))[None]).logits.argmax(-1)[0]
        assert " ".join(processor.decode(ids).split()) == mine


def test_blank_only_warning():
    vocab = Vocabulary.from_fairseq_symbols(["|", "A"])
    task = CTCTask(vocab, freeze_updates=10, warn_after=5)
    stuck = {"empty_hypotheses": 1.0, "blank_frames": 0.99}
    assert task.valid_health(stuck, update=12) == []  # still frozen / too early
    (message,) = task.valid_health(stuck, update=20)
    assert "only blanks" in message and "freeze_updates" in message
    assert task.valid_health(stuck, update=30) == []  # once


def test_evaluate_and_transcribe_with_an_lm(finetuned, tone_corpus, tmp_path, capsys):
    text = tmp_path / "text.txt"
    text.write_text(
        (tone_corpus / "train.wrd").read_text() + (tone_corpus / "valid.wrd").read_text()
    )
    assert main(["lm", "build", str(text), "--out", str(tmp_path / "lm"), "--order", "3"]) == 0
    model = str(finetuned / "checkpoints" / "best")
    base = ["evaluate", model, "--data", str(tone_corpus), "--split", "valid"]
    assert main([*base, "--out", str(tmp_path / "greedy")]) == 0
    assert main([*base, "--out", str(tmp_path / "beam"), "--lm", str(tmp_path / "lm"),
                 "--lm-weight", "1", "--word-score", "2"]) == 0  # fmt: skip
    greedy = json.loads((tmp_path / "greedy" / "valid_summary.json").read_text())
    beam = json.loads((tmp_path / "beam" / "valid_summary.json").read_text())
    assert beam["decoding"]["decoder"] == "lexicon beam search"
    assert beam["decoding"]["lm"] == str((tmp_path / "lm").resolve())
    assert beam["decoding"]["lm_weight"] == 1.0 and beam["decoding"]["word_score"] == 2.0
    # The LM knows these sentences: here it helps (measured: WER 0.97 greedy, 0.88 beam).
    assert beam["metrics"]["wer"] < greedy["metrics"]["wer"]
    rows = [r.split("\t") for r in (tmp_path / "beam" / "valid_utterances.tsv").read_text()
            .splitlines()[1:]]  # fmt: skip
    hyps = [r[4] if len(r) > 4 else "" for r in rows]
    lexicon = set(text.read_text().split())
    assert any(hyps) and all(w in lexicon for h in hyps for w in h.split())
    from wav2vec2.evaluation import tune_beam

    engine = Wav2Vec2Inference.from_pretrained(model)
    best, scores = tune_beam(
        engine, tone_corpus, "valid", tmp_path / "lm", [(1.0, 0.0), (1.0, 2.0)]
    )
    assert [(c.lm_weight, c.word_score) for c, _ in scores] == [(1.0, 0.0), (1.0, 2.0)]
    assert scores[1][1] == pytest.approx(beam["metrics"]["wer"])  # the same decoding as evaluate
    assert best == min(scores, key=lambda s: s[1])[0]
    capsys.readouterr()
    wavs = [r[0] for r in rows[:3]]
    assert main(["transcribe", model, *wavs, "--lm", str(tmp_path / "lm"), "--json",
                 "--word-score", "2"]) == 0  # fmt: skip
    texts = [json.loads(line)["text"] for line in capsys.readouterr().out.splitlines()]
    assert texts == hyps[:3]


def test_random_init_builds_a_trainable_model(tone_corpus):
    """``init`` None (training from scratch): random weights, and the feature encoder trains
    when its grad_scale says so, as a from-scratch recipe needs."""
    from dataclasses import replace

    from wav2vec2.training.finetune import build_finetune_model

    vocab = Vocabulary.for_labels(tone_corpus, "ltr")
    cfg = finetune_run_config(SMALL, "10m", tone_corpus, {}).model
    frozen = build_finetune_model(cfg, None, vocab)
    assert not any(p.requires_grad for p in frozen.feature_encoder.parameters())
    trained = replace(cfg, feature_encoder=replace(cfg.feature_encoder, grad_scale=1.0))
    torch.manual_seed(0)
    a = build_finetune_model(trained, None, vocab)
    torch.manual_seed(1)
    b = build_finetune_model(trained, None, vocab)
    assert all(p.requires_grad for p in a.parameters())
    assert a.ctc_head.out_features == len(vocab)
    assert not torch.equal(a.encoder.layers[0].feed_forward.fc1.weight,
                           b.encoder.layers[0].feed_forward.fc1.weight)  # fmt: skip

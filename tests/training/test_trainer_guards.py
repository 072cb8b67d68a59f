"""Non-finite updates are skipped and counted, then stop the run with a clear message;
collapse warnings fire on the failure modes users hit; a bad file is skipped, but a run that
can read no audio at all (training or validation) stops at once with one error."""

from __future__ import annotations

import re

import pytest
import torch

from training_support import (
    copy_corpus,
    finetune_argv,
    one_error_line,
    pretrain_argv,
    settings_file,
)
from wav2vec2.cli import main
from wav2vec2.training.metrics import read_log
from wav2vec2.training.tasks import PretrainTask

CORRUPT = b"RIFF....WAVEnot really audio"

SETTINGS = {
    "log_interval": 1,
    "valid_interval": 100,
    "save_interval": 2,
    "max_bad_updates": 3,
    "data.max_tokens": 48000,
    "data.max_sample_size": 24000,
    "data.min_sample_size": 16000,
    "data.num_workers": 0,
}


def test_non_finite_updates_are_skipped_then_stop(tiny_corpus, tmp_path, monkeypatch, capsys):
    forward = PretrainTask.forward
    calls = {"n": 0}

    def poisoned(self, model, batch, generator):
        out = forward(self, model, batch, generator)
        calls["n"] += 1
        if calls["n"] > 2:  # updates 1-2 are fine, then every loss is NaN
            out.loss = out.loss * float("nan")
        return out

    monkeypatch.setattr(PretrainTask, "forward", poisoned)
    out = tmp_path / "run"
    argv = ["pretrain", "--data", str(tiny_corpus), "--out", str(out), "--max-updates", "10",
            "--config", settings_file(tmp_path, **SETTINGS)]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()[-1:]) == 1
    assert "3 consecutive updates with a non-finite loss" in err
    named = err.split("last good checkpoint: ")[1].split(". ")[0]
    train = [r for r in read_log(out / "log.jsonl") if r["split"] == "train"]
    assert [r["skipped"] for r in train] == [0, 0, 1, 1, 1]
    # skipped updates leave the weights alone: the named checkpoint holds update 2's weights
    from wav2vec2.loading import load_model

    good = load_model(named).state_dict()
    after_two = load_model(out / "checkpoints" / "update_00000002").state_dict()
    assert all(torch.equal(good[k], after_two[k]) for k in good)
    assert all(torch.isfinite(v).all() for v in good.values())


def _history(acc, ppl, n=5):
    return [{"accuracy": acc, "code_perplexity": ppl} for _ in range(n)]


def test_collapse_and_chance_warnings():
    task = PretrainTask(warn_after=100)
    assert task.health(_history(0.01, 3.0), update=50) == []  # too early to judge
    messages = task.health(_history(0.01, 3.0), update=200)
    assert any("codebook collapse" in m for m in messages)
    assert any("at chance" in m for m in messages)
    assert task.health(_history(0.01, 3.0), update=300) == []  # each warned once
    healthy = PretrainTask(warn_after=100)
    assert healthy.health(_history(0.5, 300.0), update=500) == []


@pytest.mark.parametrize("bad", ["corrupt", "empty"])
def test_bad_training_file_is_skipped_not_fatal(tiny_corpus, tmp_path, bad, caplog):
    data = copy_corpus(tiny_corpus, tmp_path / "data")
    victim = data / audio_files(data / "train.tsv")[0]
    victim.write_bytes(b"" if bad == "empty" else CORRUPT)
    (data / "valid.tsv").write_text(f"{data}\n")
    out = tmp_path / "run"
    argv = ["pretrain", "--data", str(data), "--out", str(out), "--max-updates", "8",
            "--config", settings_file(tmp_path, **SETTINGS)]  # fmt: skip
    assert main(argv) == 0
    assert victim.name in caplog.text


def test_bf16_autocast_trains(tiny_corpus, tmp_path):
    out = tmp_path / "run"
    argv = ["pretrain", "--data", str(tiny_corpus), "--out", str(out), "--max-updates", "2",
            "--config", settings_file(tmp_path, **SETTINGS, precision="bf16")]  # fmt: skip
    assert main(argv) == 0
    train = [r for r in read_log(out / "log.jsonl") if r["split"] == "train"]
    assert len(train) == 2 and all(r["skipped"] == 0 for r in train)
    assert all(r["loss"] == r["loss"] and r["loss"] < 20 for r in train)  # finite, sane


def audio_files(manifest) -> list[str]:
    return [line.split("\t")[0] for line in manifest.read_text().splitlines()[1:]]


def no_audio_argv(verb, corpora, tmp_path, fault, subset="train"):
    """The command line of a run on a copy of the corpus where ``subset`` has ``fault``."""
    data = copy_corpus(corpora[verb], tmp_path / "data")
    manifest = data / f"{subset}.tsv"
    if fault == "all unreadable":
        for name in audio_files(manifest):
            (data / name).write_bytes(CORRUPT)
    else:
        root = "/nonexistent/audio" if fault == "root missing" else str(manifest)  # a file
        lines = manifest.read_text().splitlines()
        manifest.write_text("\n".join([root, *lines[1:]]) + "\n")
    settings = {**SETTINGS, "valid_interval": 1}
    if verb == "pretrain":
        return pretrain_argv(data, tmp_path / "run", settings_file(tmp_path, **settings), 2)
    config = settings_file(tmp_path, False, **settings, freeze_updates=0)
    return finetune_argv(data, corpora["init"], tmp_path / "run", 2, config)


@pytest.fixture
def corpora(tiny_corpus, tone_corpus, tiny_pretrained):
    return {"pretrain": tiny_corpus, "finetune": tone_corpus, "init": tiny_pretrained}


# Before the fix these runs printed "skipping bad audio file" for ever at full CPU.
@pytest.mark.timeout(120)
@pytest.mark.parametrize("verb", ["pretrain", "finetune"])
@pytest.mark.parametrize("fault", ["root missing", "root is a file", "all unreadable"])
def test_training_with_no_readable_audio_stops_with_one_error(
    verb, fault, corpora, tmp_path, capsys
):
    assert main(no_audio_argv(verb, corpora, tmp_path, fault)) == 2
    line = one_error_line(capsys)
    assert str(tmp_path / "data" / "train.tsv") in line
    if fault == "root missing":
        assert (
            "no training audio can be read: the audio folder on its first line does "
            "not exist: /nonexistent/audio" in line
        )
    elif fault == "root is a file":
        assert "the audio folder on its first line is not a folder" in line
    else:
        # every file of the pass (those kept by the length filters), with the first's reason
        assert re.search(r"no training audio could be read: (\d+) of \1 audio files in a full "
                         r"pass were unreadable \(the first: ", line)  # fmt: skip
        assert "unreadable audio" in line.split("(the first: ")[1]
    assert not list((tmp_path / "run").glob("checkpoints/update_*"))


@pytest.mark.timeout(120)
@pytest.mark.parametrize("fault", ["root missing", "all unreadable"])
def test_validation_with_no_readable_audio_stops_with_one_error(fault, corpora, tmp_path, capsys):
    assert main(no_audio_argv("pretrain", corpora, tmp_path, fault, subset="valid")) == 2
    line = one_error_line(capsys)
    assert str(tmp_path / "data" / "valid.tsv") in line
    if fault == "root missing":
        assert "no validation audio can be read" in line
    else:
        assert "no validation audio could be read: 4 of 4 audio files" in line

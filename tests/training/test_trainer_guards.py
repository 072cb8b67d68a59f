"""Non-finite updates are skipped and counted, then stop the run with a clear message;
collapse warnings fire on the failure modes users hit."""

from __future__ import annotations

import pytest
import torch
from conftest import settings_file

from wav2vec2.cli import main
from wav2vec2.training.metrics import read_log
from wav2vec2.training.tasks import PretrainTask

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
    import shutil

    data = tmp_path / "data"
    shutil.copytree(tiny_corpus, data)
    lines = (data / "train.tsv").read_text().splitlines()
    lines[0] = str(data)
    victim = data / lines[1].split("\t")[0]
    victim.write_bytes(b"" if bad == "empty" else b"RIFF....WAVEnot really audio")
    (data / "train.tsv").write_text("\n".join(lines) + "\n")
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

"""`wav2vec2 pretrain` end to end on a tiny corpus: outputs, exact resume after kill -9,
and DDP over 2 CPU processes equal to one process with the same global batch."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from training_support import DETERMINISTIC, pretrain_argv, settings_file, train_losses
from wav2vec2.cli import main
from wav2vec2.training.metrics import read_log

COMMON = {
    "log_interval": 1,
    "valid_interval": 3,
    "save_interval": 2,
    "keep_last": 2,
    "data.max_tokens": 48000,
    "data.max_sample_size": 24000,
    "data.min_sample_size": 16000,
    "data.num_workers": 0,
    "optim.lr": 0.002,
    "schedule.warmup_updates": 2,
}


def test_pretrain_writes_logs_checkpoints_and_plots(tiny_corpus, tmp_path):
    config = settings_file(tmp_path, **{**COMMON, "data.num_workers": 1})
    out = tmp_path / "run"
    assert main(pretrain_argv(tiny_corpus, out, config, 4)) == 0
    records = read_log(out / "log.jsonl")
    train = [r for r in records if r["split"] == "train"]
    valid = [r for r in records if r["split"] == "valid"]
    assert [r["update"] for r in train] == [1, 2, 3, 4] and [r["update"] for r in valid] == [3, 4]
    for key in ("loss", "contrastive", "diversity", "feature_penalty", "accuracy",
                "code_perplexity", "prob_perplexity", "temperature", "lr", "grad_norm",
                "audio_seconds_per_second", "padding"):  # fmt: skip
        assert key in train[-1], key
    assert train[-1]["padding"] == 0.0  # pretraining crops to the shortest: no padding
    names = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert names == ["best", "update_00000003", "update_00000004"]
    assert (out / "plots" / "accuracy.png").is_file() and (out / "plots" / "loss.png").is_file()
    assert any((out / "tensorboard").iterdir())
    # re-running the finished command resumes and does nothing more
    assert main(pretrain_argv(tiny_corpus, out, config, 4)) == 0
    assert len([r for r in read_log(out / "log.jsonl") if r["split"] == "train"]) == 4


def test_changed_settings_are_refused(tiny_corpus, tmp_path, capsys):
    config = settings_file(tmp_path, **COMMON)
    out = tmp_path / "run"
    assert main(pretrain_argv(tiny_corpus, out, config, 1)) == 0
    other = settings_file(tmp_path, **{**COMMON, "optim.lr": 0.1})
    assert main(pretrain_argv(tiny_corpus, out, other, 2)) == 2
    assert "optim.lr" in capsys.readouterr().err


def test_resume_after_kill_9_is_exact(tiny_corpus, tmp_path):
    config = settings_file(tmp_path, **COMMON, **DETERMINISTIC)
    reference = tmp_path / "reference"
    assert main(pretrain_argv(tiny_corpus, reference, config, 8)) == 0

    out = tmp_path / "killed"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "wav2vec2", *pretrain_argv(tiny_corpus, out, config, 8)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )  # fmt: skip
    deadline = time.time() + 240
    while not (out / "checkpoints" / "update_00000004").is_dir():
        assert proc.poll() is None, "run ended before it could be killed"
        assert time.time() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "checkpoints" / "update_00000008").exists(), "killed too late"
    assert main(pretrain_argv(tiny_corpus, out, config, 8)) == 0

    want, got = train_losses(reference), train_losses(out)
    assert sorted(got) == list(range(1, 9))
    for update in want:
        assert got[update] == pytest.approx(want[update], rel=1e-6, abs=1e-7), update
    a = load_file(str(reference / "checkpoints" / "update_00000008" / "model.safetensors"))
    b = load_file(str(out / "checkpoints" / "update_00000008" / "model.safetensors"))
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-6), key


def test_two_process_ddp_equals_one_process(tiny_corpus, tmp_path):
    # One utterance per batch (max_tokens == max_sample_size): the global batch of an update
    # is 2 utterances, on 2 ranks or as 2 accumulated micro-batches. LayerDrop is on: it
    # drops the same blocks on both ranks and in both micro-batches (drawn per update), and
    # DDP runs without find_unused_parameters.
    settings = {**COMMON, **DETERMINISTIC, "data.max_tokens": 24000, "valid_interval": 100,
                "model.transformer.layerdrop": 0.5}  # fmt: skip
    single = tmp_path / "single"
    config = settings_file(tmp_path, **settings, **{"optim.update_freq": 2})
    assert main(pretrain_argv(tiny_corpus, single, config, 4)) == 0

    ddp = tmp_path / "ddp"
    ddp_config = tmp_path / "ddp.json"
    ddp_config.write_text(open(settings_file(tmp_path, **settings)).read())
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "wav2vec2", *pretrain_argv(tiny_corpus, ddp, str(ddp_config), 4)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, "\n".join(
        line for line in proc.stderr.splitlines() if "upd/s" not in line and line.strip()
    )[-4000:]

    want, got = train_losses(single), train_losses(ddp)
    assert sorted(got) == [1, 2, 3, 4]
    for update in want:
        assert got[update] == pytest.approx(want[update], rel=1e-5), update
    a = load_file(str(single / "checkpoints" / "update_00000004" / "model.safetensors"))
    b = load_file(str(ddp / "checkpoints" / "update_00000004" / "model.safetensors"))
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-5), key


def test_layerdrop_leaves_dropped_blocks_untouched(tiny_corpus, tmp_path, monkeypatch):
    # fairseq gives a dropped block's parameters no gradient, so its optimizer skips them:
    # no step from Adam's momentum and no weight decay. Ours gives them zero gradients (for
    # DDP without find_unused_parameters), then removes them before the step.
    from wav2vec2.training.trainer import Trainer

    seen = {"dropped": 0, "kept": 0}
    update = Trainer.train_update

    def checked(self, micro_batches):
        layers = self.model.encoder.layers
        before = [[p.detach().clone() for p in layer.parameters()] for layer in layers]
        metrics = update(self, micro_batches)
        dropped = set(self.model.encoder.dropped_blocks())
        if metrics["lr"] == 0 or metrics["skipped"]:
            return metrics  # the first update of the warm-up moves nothing
        for i, layer in enumerate(layers):
            same = all(torch.equal(a, b) for a, b in zip(before[i], layer.parameters()))
            assert same == (i in dropped), (self.update, i, dropped)
            seen["dropped" if i in dropped else "kept"] += 1
        return metrics

    monkeypatch.setattr(Trainer, "train_update", checked)
    settings = {**COMMON, "valid_interval": 100, "optim.weight_decay": 0.01,
                "model.transformer.layerdrop": 0.5}  # fmt: skip
    config = settings_file(tmp_path, **settings)
    assert main(pretrain_argv(tiny_corpus, tmp_path / "run", config, 4)) == 0
    assert seen["dropped"] > 0 and seen["kept"] > 0

"""A tiny unlabeled corpus and a tiny model for trainer tests."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf


def synth_utterance(rng: np.random.Generator, seconds: float, sr: int = 16_000) -> np.ndarray:
    """A voiced, pitch-varying signal with syllable-rate amplitude modulation and pauses."""
    t = np.arange(int(seconds * sr)) / sr
    f0 = rng.uniform(90, 220) * (1 + 0.15 * np.sin(2 * np.pi * rng.uniform(0.2, 1.0) * t))
    phase = 2 * np.pi * np.cumsum(f0) / sr
    wave = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = np.clip(np.sin(2 * np.pi * rng.uniform(3, 5) * t), 0, None) ** 0.5
    wave = wave * envelope + 0.02 * rng.standard_normal(len(t))
    return (0.5 * wave / np.abs(wave).max()).astype(np.float32)


TINY_MODEL = {
    "model.feature_encoder.conv_layers": [[32, 10, 5], [32, 3, 2], [32, 3, 2], [32, 3, 2],
                                          [32, 3, 2], [32, 2, 2], [32, 2, 2]],
    "model.transformer.dim": 48,
    "model.transformer.layers": 2,
    "model.transformer.heads": 2,
    "model.transformer.ffn_dim": 96,
    "model.transformer.pos_conv_kernel": 16,
    "model.transformer.pos_conv_groups": 4,
    "model.quantizer.entries": 32,
    "model.quantizer.codevector_dim": 32,
    "model.pretraining.final_dim": 32,
    "model.pretraining.num_negatives": 10,
}  # fmt: skip

# No randomness outside the seeded per-batch generators: dropout and LayerDrop off.
DETERMINISTIC = {
    "model.transformer.dropout": 0.0,
    "model.transformer.attention_dropout": 0.0,
    "model.transformer.encoder_input_dropout": 0.0,
    "model.transformer.layerdrop": 0.0,
    "model.dropout_input": 0.0,
    "model.pretraining.dropout_features": 0.0,
}


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory):
    """12 training and 4 validation utterances of 1.5-3.5 s, with manifests."""
    root = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(0)
    lines = {"train": [str(root)], "valid": [str(root)]}
    for i in range(16):
        wave = synth_utterance(rng, rng.uniform(1.5, 3.5))
        sf.write(root / f"u{i:02d}.wav", wave, 16000, subtype="PCM_16")
        lines["train" if i < 12 else "valid"].append(f"u{i:02d}.wav\t{len(wave)}")
    for split, content in lines.items():
        (root / f"{split}.tsv").write_text("\n".join(content) + "\n")
    return root


def settings_file(tmp_path, tiny_model: bool = True, **extra) -> str:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({**(TINY_MODEL if tiny_model else {}), **extra}))
    return str(path)


def pretrain_argv(data, out, config, updates):
    return ["pretrain", "--data", str(data), "--preset", "small", "--out", str(out),
            "--max-updates", str(updates), "--config", config]  # fmt: skip


def finetune_argv(data, init, out, updates, config):
    return ["finetune", "--data", str(data), "--init", str(init), "--out", str(out),
            "--preset", "10m", "--max-updates", str(updates), "--config", config]  # fmt: skip


def train_losses(run_dir) -> dict[int, float]:
    """{update: loss} of a run's logged training records."""
    from wav2vec2.training.metrics import read_log

    return {
        r["update"]: r["loss"] for r in read_log(run_dir / "log.jsonl") if r["split"] == "train"
    }


def copy_corpus(corpus: Path, dest: Path) -> Path:
    """A copy of ``corpus`` at ``dest`` whose manifests name the copy as their audio folder."""
    shutil.copytree(corpus, dest)
    for manifest in dest.glob("*.tsv"):
        lines = manifest.read_text().splitlines()
        manifest.write_text("\n".join([str(dest), *lines[1:]]) + "\n")
    return dest


# -- a tiny labeled set: each letter is a tone, words are separated by silence ----------------
TONES = {"A": 330.0, "B": 440.0, "C": 587.0, "D": 784.0, "E": 988.0}


def tone_utterance(words: list[str], rng: np.random.Generator, sr: int = 16000) -> np.ndarray:
    parts = [np.zeros(int(0.1 * sr), np.float32)]
    for word in words:
        for letter in word:
            t = np.arange(int(rng.uniform(0.10, 0.14) * sr)) / sr
            parts.append(0.5 * np.sin(2 * np.pi * TONES[letter] * t).astype(np.float32))
        parts.append(np.zeros(int(rng.uniform(0.08, 0.12) * sr), np.float32))
    wave = np.concatenate(parts)
    return wave + 0.01 * rng.standard_normal(len(wave)).astype(np.float32)


@pytest.fixture(scope="session")
def tone_corpus(tmp_path_factory):
    """train (32) and valid (8) utterances with .tsv/.ltr/.wrd and dict.ltr.txt."""
    root = tmp_path_factory.mktemp("tones")
    rng = np.random.default_rng(0)
    letters = list(TONES)
    for split, n in (("train", 32), ("valid", 8)):
        tsv, ltr, wrd = [str(root)], [], []
        for i in range(n):
            words = [
                "".join(rng.choice(letters, rng.integers(1, 4))) for _ in range(rng.integers(3, 6))
            ]
            wave = tone_utterance(words, rng)
            name = f"{split}{i:02d}.wav"
            sf.write(root / name, wave, 16000, subtype="PCM_16")
            tsv.append(f"{name}\t{len(wave)}")
            wrd.append(" ".join(words))
            ltr.append(" ".join("|".join(words)) + " |")
        for ext, lines in (("tsv", tsv), ("ltr", ltr), ("wrd", wrd)):
            (root / f"{split}.{ext}").write_text("\n".join(lines) + "\n")
    (root / "dict.ltr.txt").write_text(
        "| 100\n" + "".join(f"{c} {50 - i}\n" for i, c in enumerate(letters))
    )
    return root


@pytest.fixture(scope="session")
def tiny_pretrained(tmp_path_factory):
    """A randomly initialised tiny model directory standing in for a pretrained one."""
    import torch

    from wav2vec2 import SMALL, Wav2Vec2Model
    from wav2vec2.checkpoint.model_dir import save_model_dir

    cfg = SMALL.with_overrides(**{k[len("model.") :]: v for k, v in TINY_MODEL.items()})
    torch.manual_seed(0)
    return save_model_dir(Wav2Vec2Model(cfg), tmp_path_factory.mktemp("pretrained") / "model")


def one_error_line(capsys) -> str:
    """The one ``error:`` line a failed CLI run printed (and no traceback)."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1, err[-2000:]
    return lines[0]

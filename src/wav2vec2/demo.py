"""The main job on built-in data.

Until the corpus, pretraining and fine-tuning pipeline is wired in, the demo generates
speech-like audio (harmonic tones with moving formants and pauses), runs the SMALL model's
forward pass and pretraining objective on it, takes a few optimizer steps to show the loss
falling, and saves the model and a feature file.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from wav2vec2.config import SMALL
from wav2vec2.inference import Wav2Vec2Inference
from wav2vec2.interop.loading import save_model_dir
from wav2vec2.models.wav2vec2 import Wav2Vec2Model


def synth_utterance(rng: np.random.Generator, seconds: float, sr: int = 16_000) -> np.ndarray:
    """A voiced, pitch-varying signal with syllable-rate amplitude modulation and pauses."""
    t = np.arange(int(seconds * sr)) / sr
    f0 = rng.uniform(90, 220) * (1 + 0.15 * np.sin(2 * np.pi * rng.uniform(0.2, 1.0) * t))
    phase = 2 * np.pi * np.cumsum(f0) / sr
    wave = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = np.clip(np.sin(2 * np.pi * rng.uniform(3, 5) * t), 0, None) ** 0.5
    wave = wave * envelope + 0.02 * rng.standard_normal(len(t))
    return (0.5 * wave / np.abs(wave).max()).astype(np.float32)


def run_demo(out_dir: str | Path = "demo", steps: int = 20, seed: int = 0) -> dict:
    out = Path(out_dir)
    (out / "audio").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    waves = [synth_utterance(rng, s) for s in (4.0, 3.2, 2.5, 3.7)]
    for i, w in enumerate(waves):
        sf.write(out / "audio" / f"utt{i}.wav", w, 16_000, subtype="PCM_16")
    print(f"[1/4] generated {len(waves)} utterances ({sum(map(len, waves)) / 16000:.1f} s)")

    model = Wav2Vec2Model(SMALL.with_overrides(**{"transformer.layerdrop": 0.0}))
    print(f"[2/4] SMALL model: {model.num_parameters():,} parameters")
    lengths = torch.tensor([len(w) for w in waves])
    x = torch.zeros(len(waves), int(lengths.max()))
    for row, w in zip(x, waves):
        row[: len(w)] = torch.from_numpy(w)

    model.eval()
    with torch.no_grad():
        enc = model.encode(x, lengths)
    print(f"      forward pass: context {tuple(enc.last_hidden_state.shape)} (B, frames, dim)")

    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=5e-4, betas=(0.9, 0.98), eps=1e-6)
    history = []
    start = time.time()
    for step in range(steps + 1):
        model.set_update(step)
        result = model.pretrain(x, lengths, generator=torch.Generator().manual_seed(step))
        loss = result.loss
        history.append(loss.total.item() / loss.sample_size)
        if step % 5 == 0:
            print(
                f"[3/4] step {step:3d}  loss/step {history[-1]:.3f}  "
                f"contrastive {loss.contrastive.item() / loss.sample_size:.3f}  "
                f"diversity {loss.diversity.item():.3f}  acc {result.accuracy:.2f}  "
                f"code ppl {float(result.code_perplexity):.1f}"
            )
        if step < steps:
            opt.zero_grad()
            loss.total.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            opt.step()
    print(f"      {steps} updates in {time.time() - start:.1f} s")

    save_model_dir(model, out / "model")
    feats = Wav2Vec2Inference(model).features(out / "audio" / "utt0.wav")
    np.save(out / "utt0_features.npy", feats)
    print(f"[4/4] model saved to {out / 'model'}; features of utt0: {feats.shape} -> "
          f"{out / 'utt0_features.npy'}")  # fmt: skip
    return {"first_loss": history[0], "last_loss": history[-1]}

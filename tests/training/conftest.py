"""A tiny unlabeled corpus and a tiny model for trainer tests."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from wav2vec2.demo import synth_utterance

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


def settings_file(tmp_path, **extra) -> str:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({**TINY_MODEL, **extra}))
    return str(path)

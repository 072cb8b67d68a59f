"""A tiny LM and hand-made CTC emissions for the beam search tests (``test_lm.py``,
``test_decoding_extra.py``)."""

from __future__ import annotations

from pathlib import Path

import torch

from wav2vec2.cli import main
from wav2vec2.vocab import Vocabulary

TEXT = [
    "THE CAT SAT ON THE MAT",
    "THE DOG SAT ON THE LOG",
    "A CAT AND A DOG",
    "THE CAT ATE THE RAT",
    "ON THE MAT THE CAT SAT",
] * 4
VOCAB = Vocabulary.from_fairseq_symbols(["|", *"ABCDEFGHIJKLMNOPQRSTUVWXYZ"])


def build_lm(tmp_path_factory) -> Path:
    """A 3-gram on TEXT (each test module makes it its fixture ``lm_dir``: shared fixtures
    cannot live in a conftest here)."""
    tmp = tmp_path_factory.mktemp("lm")
    (tmp / "text.txt").write_text("\n".join(TEXT) + "\n")
    assert (
        main(["lm", "build", str(tmp / "text.txt"), "--out", str(tmp / "lm"), "--order", "3"]) == 0
    )
    return tmp / "lm"


def emissions(frames: list[dict[str, float]], vocab: Vocabulary = VOCAB) -> torch.Tensor:
    """(1, T, V) logits whose softmax puts the given probabilities on each frame's letters
    and the rest on blank."""
    rows = []
    for frame in frames:
        p = torch.full((len(vocab),), 1e-4)
        for token, prob in frame.items():
            p[vocab.index[token]] = prob
        p[vocab.blank] = max(1.0 - sum(frame.values()), 1e-4)
        rows.append(p.log())
    return torch.stack(rows)[None]


def spell(text: str, confusions: dict[int, dict[str, float]] | None = None):
    """Frames for TEXT: each letter then a blank, words separated by '|'. confusions[i]
    replaces the distribution of the i-th letter frame."""
    frames, i = [], 0
    for w, word in enumerate(text.split()):
        if w:
            frames += [{"|": 0.9}, {}]
        for letter in word:
            frames += [(confusions or {}).get(i, {letter: 0.9}), {}]
            i += 1
    return frames

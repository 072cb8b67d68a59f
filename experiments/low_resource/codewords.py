"""Do the quantized codes carry phonetic information? Codeword-letter co-occurrence.

The paper (sec. 5, fig. 2 / appendix) counts how often each quantizer codeword co-occurs
with each phoneme of a forced alignment. Our corpus has letters, not phonemes, so:

1. each dev frame gets the pretrained model's codeword: the quantizer's argmax entry in each
   of its G codebooks (its choice at evaluation, no Gumbel noise), the G indices read as one
   codeword (V**G possible, 256 for SMALL);
2. each frame gets a letter from the CTC forced alignment of the transcript by the best
   fine-tuned model (``Wav2Vec2Inference.align``); frames between letters (blank) and word
   boundaries are left out;
3. the counts give P(letter | codeword), drawn as a heatmap of the most frequent codewords
   sorted by their likeliest letter, and the mutual information I(letter; codeword) in bits:
   how much knowing the code lowers the letter's entropy. The plug-in estimate is biased
   upward with few counts per cell, so the same estimate with the letters shuffled over
   frames (no relation left) is reported beside it as the floor.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from wav2vec2.inference import Wav2Vec2Inference


@dataclass(frozen=True)
class CodeLetterCounts:
    counts: np.ndarray  # (codewords, letters) co-occurrences
    letters: tuple[str, ...]  # the columns
    codewords: int  # V**G

    @property
    def frames(self) -> int:
        return int(self.counts.sum())


@dataclass(frozen=True)
class CodeLetterInformation:
    letter_entropy: float  # H(letter), bits
    conditional_entropy: float  # H(letter | codeword), bits
    mutual_information: float  # I = H(letter) - H(letter | codeword), bits
    shuffled_mutual_information: float  # the same estimate with letters shuffled
    frames: int
    codewords_used: int


@torch.inference_mode()
def frame_codewords(encoder: Wav2Vec2Inference, audio: str | Path) -> np.ndarray:
    """(frames,) the pretrained model's codeword per frame: its G argmax indices as one
    number, sum_g index_g * V**(G-1-g)."""
    model = encoder.model
    if model.quantizer is None:
        raise ValueError("the model has no quantizer (not a pretraining checkpoint)")
    wave = torch.from_numpy(encoder.load(audio))[None].to(encoder.device)
    features = model.encode(wave).features[0]  # (T, C): the quantizer's input
    indices = model.quantizer(features).indices.cpu().numpy()  # (T, G)
    v = model.quantizer.cfg.entries
    weights = v ** np.arange(indices.shape[1] - 1, -1, -1)
    return indices @ weights


def frame_letters(engine: Wav2Vec2Inference, audio: str | Path, text: str) -> list[str | None]:
    """Each frame's letter in the forced alignment of ``text``; None between letters."""
    alignment = engine.align(audio, text)
    seconds = 1 / engine.cfg.frame_rate
    frames = int(round(alignment.duration / seconds)) + 1
    out: list[str | None] = [None] * frames
    for c in alignment.chars:
        if c.text == engine.vocab.word_delimiter:
            continue
        first, last = int(round(c.start / seconds)), int(round(c.end / seconds))
        for t in range(first, min(max(last, first + 1), frames)):
            out[t] = c.text
    return out


def count(
    encoder: Wav2Vec2Inference,
    engine: Wav2Vec2Inference,
    items: Sequence[tuple[str, str]],
) -> CodeLetterCounts:
    """Co-occurrences over ``items`` (audio path, word transcript)."""
    letters = tuple(
        t for t in engine.vocab.tokens if len(t) == 1 and t.isalpha()
    )  # the alphabet, in the dictionary's order
    column = {c: i for i, c in enumerate(letters)}
    q = encoder.model.quantizer.cfg
    codewords = q.entries**q.groups
    counts = np.zeros((codewords, len(letters)), dtype=np.int64)
    for audio, text in items:
        codes = frame_codewords(encoder, audio)
        for code, letter in zip(codes, frame_letters(engine, audio, text)):
            if letter in column:
                counts[code, column[letter]] += 1
    return CodeLetterCounts(counts, letters, codewords)


def _entropy(p: np.ndarray) -> float:
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def mutual_information(counts: np.ndarray) -> tuple[float, float, float]:
    """(H(letter), H(letter | code), I(letter; code)) in bits, plug-in estimates."""
    total = counts.sum()
    if total == 0:
        return 0.0, 0.0, 0.0
    h_letter = _entropy(counts.sum(axis=0) / total)
    rows = counts.sum(axis=1)
    h_cond = sum(rows[i] / total * _entropy(counts[i] / rows[i]) for i in np.flatnonzero(rows))
    return h_letter, float(h_cond), h_letter - float(h_cond)


def information(c: CodeLetterCounts, seed: int = 0) -> CodeLetterInformation:
    """The mutual information, and the same estimate with the letters shuffled over frames."""
    h, hc, mi = mutual_information(c.counts)
    codes, letters = np.nonzero(c.counts)
    reps = c.counts[codes, letters]
    code_of_frame = np.repeat(codes, reps)
    letter_of_frame = np.random.default_rng(seed).permutation(np.repeat(letters, reps))
    shuffled = np.zeros_like(c.counts)
    np.add.at(shuffled, (code_of_frame, letter_of_frame), 1)
    _, _, mi_shuffled = mutual_information(shuffled)
    used = int((c.counts.sum(axis=1) > 0).sum())
    return CodeLetterInformation(h, hc, mi, mi_shuffled, c.frames, used)


def plot_heatmap(c: CodeLetterCounts, info: CodeLetterInformation, path: Path, top: int = 40):
    """P(letter | codeword) for the ``top`` most frequent codewords, rows sorted by their
    likeliest letter (alphabet order) then by how sure they are: a near-diagonal band means
    codes that stand for letters."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from wav2vec2.atomic import atomic_write

    rows = c.counts.sum(axis=1)
    chosen = [i for i in np.argsort(-rows, kind="stable")[:top] if rows[i] > 0]
    p = c.counts[chosen] / rows[chosen, None]
    order = sorted(range(len(chosen)), key=lambda k: (int(p[k].argmax()), -float(p[k].max())))
    p = p[order]
    fig, ax = plt.subplots(figsize=(9, max(3.0, 0.22 * len(chosen) + 1.5)))
    image = ax.imshow(p, aspect="auto", cmap="viridis", vmin=0, vmax=max(float(p.max()), 1e-9))
    ax.set_xticks(range(len(c.letters)), c.letters)
    ax.set_yticks(range(len(chosen)), [str(chosen[k]) for k in order], fontsize=7)
    ax.set_xlabel("letter (CTC forced alignment by the fine-tuned model)")
    ax.set_ylabel("codeword (pretrained quantizer)")
    ax.set_title(
        f"P(letter | codeword), {len(chosen)} most frequent codewords\n"
        f"I(letter; codeword) = {info.mutual_information:.2f} bits of "
        f"H(letter) = {info.letter_entropy:.2f} (shuffled: "
        f"{info.shuffled_mutual_information:.2f}); {info.frames} frames"
    )
    fig.colorbar(image, ax=ax, fraction=0.03)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=100, format="png"))
    plt.close(fig)

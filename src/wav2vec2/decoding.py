"""CTC decoding behind one ``Decoder`` interface: greedy (best path) here; lexicon beam
search with an n-gram LM in :mod:`wav2vec2.beam_search`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor

from wav2vec2.vocab import Vocabulary


@dataclass(frozen=True)
class Hypothesis:
    text: str
    tokens: tuple[int, ...]  # label ids after collapsing repeats and removing blanks
    frames: tuple[int, ...]  # frame index where each token starts (for timestamps)
    ends: tuple[int, ...]  # frame after each token's last frame (its run in the CTC path)


class Decoder(Protocol):
    def decode(self, logits: Tensor, lengths: Tensor) -> list[Hypothesis]: ...

    def describe(self) -> dict:
        """The decoding settings, for reports (``evaluate``'s summary JSON)."""
        ...


class GreedyDecoder:
    """Best path: argmax per frame, collapse repeats, drop blanks (Graves et al. 2006)."""

    def __init__(self, vocab: Vocabulary):
        self.vocab = vocab
        self.skip = non_text_labels(vocab)

    def describe(self) -> dict:
        return {"decoder": "greedy", "lm": None}

    def decode(self, logits: Tensor, lengths: Tensor) -> list[Hypothesis]:
        """logits: (B, T, V); lengths: (B,) valid frames."""
        best = logits.argmax(dim=-1).cpu()
        out = []
        for row, n in zip(best, lengths.tolist()):
            tokens, starts, ends = collapse(row[: int(n)], self.skip)
            out.append(Hypothesis(self.vocab.decode(list(tokens)), tokens, starts, ends))
        return out


def non_text_labels(vocab: Vocabulary) -> set[int]:
    """The blank and the specials (<s>, </s>, <unk>, ...): not text; a trained model never
    emits the specials."""
    return {i for i, t in enumerate(vocab.tokens) if t in vocab.specials} | {vocab.blank}


def collapse(path, skip: set[int]) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """A CTC path (one label per frame) -> (labels, start frames, end frames): repeats
    merged, then the labels in ``skip`` (the blank, specials) dropped. A label's frames are
    its run in the path: ``[start, end)``."""
    ids, counts = torch.unique_consecutive(torch.as_tensor(path), return_counts=True)
    ends = torch.cumsum(counts, 0)
    keep = [
        (int(i), int(e - c), int(e)) for i, c, e in zip(ids, counts, ends) if int(i) not in skip
    ]
    return tuple(k[0] for k in keep), tuple(k[1] for k in keep), tuple(k[2] for k in keep)

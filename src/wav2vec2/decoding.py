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
            tokens, starts = collapse(row[: int(n)], self.skip)
            out.append(Hypothesis(self.vocab.decode(list(tokens)), tokens, starts))
        return out


def non_text_labels(vocab: Vocabulary) -> set[int]:
    """The blank and the specials (<s>, </s>, <unk>, ...): not text; a trained model never
    emits the specials."""
    return {i for i, t in enumerate(vocab.tokens) if t in vocab.specials} | {vocab.blank}


def collapse(path: Tensor, skip: set[int]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """A CTC path (one label per frame) -> (labels, start frames): repeats merged, then the
    labels in ``skip`` (the blank, specials) dropped."""
    ids, counts = torch.unique_consecutive(torch.as_tensor(path), return_counts=True)
    starts = torch.cumsum(counts, 0) - counts
    keep = [(int(i), int(s)) for i, s in zip(ids, starts) if int(i) not in skip]
    return tuple(i for i, _ in keep), tuple(s for _, s in keep)

"""Long audio in bounded memory: cut into chunks with context on both sides, run each chunk,
and stitch the CTC emissions before decoding.

This is what transformers' ASR pipeline does with ``chunk_length_s`` and
``stride_length_s``: every chunk is run with extra audio (the context) before and after its
core, and only the frames of the core are kept, so that no frame is computed at a chunk's
edge, where the Transformer would see only one side of the speech. The decoder then sees one
emission sequence for the whole file, so no word is cut at a chunk boundary.

Frames line up exactly: chunks start on multiples of the encoder's stride (320 samples,
20 ms), and a frame of a chunk starting at sample ``s`` is frame ``s / stride + j`` of the
whole file, computed by the convolutions from the same samples. Only the Transformer (and a
group-norm encoder's statistics) see less than the whole file, which is why the context is
there.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from wav2vec2.config import FeatureEncoderConfig
from wav2vec2.errors import Wav2Vec2Error


@dataclass(frozen=True)
class ChunkConfig:
    """``chunk_seconds`` of audio per chunk (its core), with ``context_seconds`` more on each
    side. Files up to ``chunk_seconds + 2 * context_seconds`` run whole. The defaults were
    chosen by measurement (README, "Long audio"): see ``benchmarks/long_audio.py``."""

    chunk_seconds: float = 20.0
    context_seconds: float = 2.0

    def __post_init__(self) -> None:
        if not self.chunk_seconds > 0:
            raise Wav2Vec2Error(f"--chunk-seconds must be positive, got {self.chunk_seconds}")
        if not self.context_seconds >= 0:
            raise Wav2Vec2Error(
                f"--context-seconds must be zero or more, got {self.context_seconds}"
            )


@dataclass(frozen=True)
class Chunk:
    """Samples ``[start, end)`` of the input are run; frames ``[keep_from, keep_to)`` of the
    whole file's emissions come from it (frame numbers of the whole file)."""

    start: int
    end: int
    keep_from: int
    keep_to: int


def plan_chunks(
    num_samples: int, config: ChunkConfig, encoder: FeatureEncoderConfig, sample_rate: int
) -> list[Chunk]:
    """The chunks of an input of ``num_samples`` samples; one chunk (the whole input) when it
    is short enough. Their kept frames cover the file's frames once each, in order."""
    stride = encoder.stride
    total = encoder.num_frames(num_samples)
    core = max(1, round(config.chunk_seconds * sample_rate / stride))  # in frames
    context = round(config.context_seconds * sample_rate / stride)
    if total <= core + 2 * context:
        return [Chunk(0, num_samples, 0, total)]
    chunks = []
    for first in range(0, total, core):
        last = min(first + core, total)
        start = max(0, first - context) * stride
        # the samples frame `last + context - 1` needs, so the right context is whole
        end = min(num_samples, (last + context - 1) * stride + encoder.receptive_field)
        chunks.append(Chunk(start, end, first, last))
    return chunks


def stitch(chunks: list[Chunk], emissions: list[Tensor], stride: int) -> Tensor:
    """The whole file's (frames, vocabulary) emissions from each chunk's own (its frames
    first): each chunk gives the frames of its core."""
    kept = []
    for chunk, logits in zip(chunks, emissions, strict=True):
        offset = chunk.start // stride  # frame j of the chunk is frame offset + j of the file
        a, b = chunk.keep_from - offset, chunk.keep_to - offset
        if a < 0 or b > logits.shape[0]:
            raise AssertionError(f"chunk {chunk} produced only {logits.shape[0]} frames")
        kept.append(logits[a:b])
    return torch.cat(kept) if len(kept) > 1 else kept[0]

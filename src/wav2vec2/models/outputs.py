"""Typed model outputs."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from wav2vec2.losses import PretrainingLoss


@dataclass(frozen=True)
class EncoderOutput:
    last_hidden_state: Tensor  # (B, T, D) context representations C
    hidden_states: tuple[Tensor, ...]  # layers+1 tensors (B, T, D); 0 = input to block 1
    features: Tensor  # (B, T, C) normalized latents Z (before projection and masking)
    feature_penalty: Tensor  # () mean squared encoder output (fairseq features_pen)
    frame_lengths: Tensor  # (B,) valid frames per utterance
    padding_mask: Tensor | None  # (B, T) True at padded frames, None when all are valid


@dataclass(frozen=True)
class PretrainingOutput:
    loss: PretrainingLoss
    logits: Tensor  # (M, 1+K) contrastive logits, positive at index 0
    context: Tensor  # (M, final_dim) projected transformer outputs at masked steps
    targets: Tensor  # (M, final_dim) projected quantized latents at masked steps
    mask: Tensor  # (B, T) masked time steps
    negatives: Tensor  # (M, K) distractor indices into the masked steps
    correct: int  # contrastive accuracy numerator
    count: int  # ... and denominator
    code_perplexity: Tensor
    prob_perplexity: Tensor
    temperature: float
    encoder: EncoderOutput

    @property
    def accuracy(self) -> float:
        return self.correct / max(self.count, 1)


@dataclass(frozen=True)
class CTCOutput:
    logits: Tensor  # (B, T, vocab) unnormalized CTC emissions
    frame_lengths: Tensor  # (B,)
    encoder: EncoderOutput

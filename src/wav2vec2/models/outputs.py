"""Typed model outputs."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor


@dataclass(frozen=True)
class EncoderOutput:
    last_hidden_state: Tensor  # (B, T, D) context representations C
    hidden_states: tuple[Tensor, ...]  # layers+1 tensors (B, T, D); 0 = input to block 1
    features: Tensor  # (B, T, C) normalized latents Z (before projection and masking)
    # () mean squared feature encoder output (fairseq features_pen); None unless asked for,
    # so that encoding alone computes no loss term.
    feature_penalty: Tensor | None
    frame_lengths: Tensor  # (B,) valid frames per utterance
    padding_mask: Tensor | None  # (B, T) True at padded frames, None when all are valid


@dataclass(frozen=True)
class PretrainingOutput:
    """The parts of the self-supervised objective; ``losses.pretraining_loss`` weighs them."""

    logits: Tensor  # (M, 1+K) contrastive logits, positive at index 0
    prob_perplexity: Tensor  # () of the softmax averaged over steps, summed over groups
    code_perplexity: Tensor  # () of the hard code choices, summed over groups
    num_codevectors: int  # G*V: the most either perplexity can be
    feature_penalty: Tensor  # () the encoder's feature penalty, unweighted
    context: Tensor  # (M, final_dim) projected transformer outputs at masked steps
    targets: Tensor  # (M, final_dim) projected quantized latents at masked steps
    mask: Tensor  # (B, T) masked time steps
    negatives: Tensor  # (M, K) distractor indices into the masked steps
    temperature: float  # Gumbel-softmax temperature at this update
    encoder: EncoderOutput


@dataclass(frozen=True)
class CTCOutput:
    logits: Tensor  # (B, T, vocab) unnormalized CTC emissions
    frame_lengths: Tensor  # (B,)
    encoder: EncoderOutput

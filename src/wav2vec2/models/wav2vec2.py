"""The wav2vec 2.0 model: feature encoder, masking, Transformer, quantizer and heads.

One class serves every use: ``encode`` (features), ``pretrain`` (the parts of the
self-supervised objective, which ``losses.pretraining_loss`` weighs) and ``ctc`` (fine-tuned
recognition). Which heads exist follows the config: ``quantizer`` for pretraining,
``vocab_size`` for CTC.
"""

from __future__ import annotations

import contextlib
from dataclasses import replace

import torch
from torch import Tensor, nn

from wav2vec2 import losses
from wav2vec2.config import Wav2Vec2Config
from wav2vec2.models.dropout import Dropout
from wav2vec2.models.feature_encoder import FeatureEncoder
from wav2vec2.models.masking import sample_masks
from wav2vec2.models.negatives import sample_negatives
from wav2vec2.models.outputs import CTCOutput, EncoderOutput, PretrainingOutput
from wav2vec2.models.quantizer import GumbelQuantizer
from wav2vec2.models.transformer import TransformerEncoder


class Wav2Vec2Model(nn.Module):
    def __init__(self, cfg: Wav2Vec2Config):
        super().__init__()
        self.cfg = cfg
        c, d = cfg.feature_encoder.dim, cfg.transformer.dim
        self.feature_encoder = FeatureEncoder(cfg.feature_encoder)
        self.feature_norm = nn.LayerNorm(c, eps=cfg.transformer.layer_norm_eps)
        if not cfg.feature_projection and c != d:
            raise ValueError(f"feature_projection=False needs equal widths, got {c} and {d}")
        self.feature_projection = nn.Linear(c, d) if cfg.feature_projection else nn.Identity()
        self.dropout_input = Dropout(cfg.dropout_input)
        # Learned vector that replaces masked time steps (paper sec. 3.1).
        self.mask_embedding = nn.Parameter(torch.empty(d).uniform_())
        self.encoder = TransformerEncoder(cfg.transformer)

        self.quantizer: GumbelQuantizer | None = None
        if cfg.quantizer is not None:
            if cfg.pretraining is None:
                raise ValueError("a quantizer needs a pretraining config")
            final = cfg.pretraining.final_dim
            self.quantizer = GumbelQuantizer(cfg.quantizer, c)
            self.project_q = nn.Linear(cfg.quantizer.codevector_dim, final)
            self.final_proj = nn.Linear(d, final)
            self.dropout_features = Dropout(cfg.pretraining.dropout_features)

        self.ctc_head: nn.Linear | None = None
        if cfg.vocab_size is not None:
            self.final_dropout = Dropout(cfg.final_dropout)
            self.ctc_head = nn.Linear(d, cfg.vocab_size)

    # -- shapes ---------------------------------------------------------------------------
    def frame_lengths(self, sample_lengths: Tensor) -> Tensor:
        return self.feature_encoder.output_lengths(sample_lengths)

    def padding_mask(self, sample_lengths: Tensor | None, frames: int) -> Tensor | None:
        """(B, frames) True at padded frames, or None when no lengths are given."""
        if sample_lengths is None:
            return None
        lengths = self.frame_lengths(sample_lengths)
        return torch.arange(frames, device=lengths.device)[None, :] >= lengths[:, None]

    # -- forward passes -------------------------------------------------------------------
    def encode(
        self,
        waveforms: Tensor,
        lengths: Tensor | None = None,
        *,
        mask_time: Tensor | None = None,
        mask_channel: Tensor | None = None,
        num_layers: int | None = None,
        generator: torch.Generator | None = None,
        feature_penalty: bool = False,
        latents: Tensor | None = None,
    ) -> EncoderOutput:
        """waveforms: (B, samples), zero-padded; lengths: (B,) valid samples, or None when
        every row is valid (or the model was trained without padding masks, as BASE).

        mask_time: (B, T) steps replaced by the mask embedding; mask_channel: (B, D) latent
        channels zeroed (SpecAugment-style, fine-tuning). feature_penalty: also compute the
        penalty on the feature encoder's output (pretraining; plain encoding pays for none).
        latents: (B, C, T) the feature encoder's output for these very ``waveforms`` and
        ``lengths``, computed earlier (fine-tuning's frozen encoder, cached across epochs by
        ``training.feature_cache``): the convolutions are skipped. It is not modified.
        """
        if latents is None:
            latents = self.feature_encoder(waveforms, lengths)  # (B, C, T)
        pen = losses.feature_penalty(latents) if feature_penalty else None
        features = self.feature_norm(latents.transpose(1, 2))  # (B, T, C)
        x = self.dropout_input(self.feature_projection(features))  # (B, T, D)
        if mask_time is not None:
            x = torch.where(mask_time[..., None], self.mask_embedding.to(x.dtype), x)
        if mask_channel is not None:
            x = x.masked_fill(mask_channel[:, None, :], 0.0)
        padding = self.padding_mask(lengths, x.shape[1])
        last, hidden = self.encoder(x, padding, num_layers=num_layers, generator=generator)
        frame_lengths = (
            self.frame_lengths(lengths)
            if lengths is not None
            else torch.full((x.shape[0],), x.shape[1], dtype=torch.long, device=x.device)
        )
        return EncoderOutput(last, hidden, features, pen, frame_lengths, padding)

    forward = encode

    def pretrain(
        self,
        waveforms: Tensor,
        lengths: Tensor | None = None,
        *,
        mask_time: Tensor | None = None,
        negatives: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> PretrainingOutput:
        """The self-supervised task (paper sec. 3): mask, contextualize, and identify the
        true quantized latent of each masked step among K distractors.

        mask_time (B, T) and negatives (M, K) may be given (e.g. for parity tests); otherwise
        they are drawn from ``generator``.
        """
        if self.quantizer is None or self.cfg.pretraining is None:
            raise ValueError("this model has no quantizer: it cannot be pretrained")
        pcfg = self.cfg.pretraining
        frames = self.cfg.feature_encoder.num_frames(waveforms.shape[-1])
        # A given time mask is used as it is; a channel mask is drawn only in training.
        drawn_time, mask_channel = sample_masks(
            self.cfg.masking,
            waveforms.shape[0],
            frames=frames if mask_time is None else None,
            channels=self.cfg.transformer.dim if self.training else None,
            frame_lengths=None if lengths is None else self.frame_lengths(lengths),
            generator=generator,
            device=waveforms.device,
        )
        mask_time = drawn_time if mask_time is None else mask_time.to(waveforms.device)
        if mask_time is None:
            raise ValueError("pretraining needs masked steps: model.masking.time_prob is 0")
        enc = self.encode(
            waveforms, lengths, mask_time=mask_time, mask_channel=mask_channel,
            generator=generator, feature_penalty=True,
        )  # fmt: skip
        # Targets: quantized *unmasked* latents at the masked steps.
        latents = self.dropout_features(enc.features)[mask_time]  # (M, C)
        q = self.quantizer(latents, generator)
        targets = self.project_q(q.quantized)  # (M, final)
        if negatives is None:
            negatives = sample_negatives(mask_time, pcfg.num_negatives, generator)
        negatives = negatives.to(targets.device)  # (M, K) indices into targets
        context = self.final_proj(enc.last_hidden_state[mask_time])  # (M, final)
        return PretrainingOutput(
            logits=losses.contrastive_logits(context, targets, negatives, pcfg.logit_temp),
            prob_perplexity=q.prob_perplexity,
            code_perplexity=q.code_perplexity,
            num_codevectors=self.quantizer.cfg.num_codevectors,
            feature_penalty=enc.feature_penalty,
            context=context,
            targets=targets,
            mask=mask_time,
            negatives=negatives,
            temperature=self.quantizer.temperature,
            encoder=enc,
        )

    def ctc(
        self,
        waveforms: Tensor,
        lengths: Tensor | None = None,
        *,
        mask_time: Tensor | None = None,
        mask_channel: Tensor | None = None,
        generator: torch.Generator | None = None,
        freeze_encoder: bool = False,
        latents: Tensor | None = None,
    ) -> CTCOutput:
        """CTC emissions (B, T, vocab) for recognition (paper sec. 3.3).

        freeze_encoder: run everything below the head without gradients, as fairseq does in
        the first updates of fine-tuning, so that only the output layer trains.
        latents: the feature encoder's output, precomputed (see ``encode``).
        """
        if self.ctc_head is None:
            raise ValueError("this model has no CTC head (config.vocab_size is None)")
        with torch.no_grad() if freeze_encoder else contextlib.nullcontext():
            enc = self.encode(
                waveforms, lengths, mask_time=mask_time, mask_channel=mask_channel,
                generator=generator, latents=latents,
            )  # fmt: skip
        logits = self.ctc_head(self.final_dropout(enc.last_hidden_state))
        return CTCOutput(logits, enc.frame_lengths, enc)

    # -- convenience ----------------------------------------------------------------------
    def set_update(self, update: int) -> None:
        """Per-update schedules that live in the model (the Gumbel temperature)."""
        if self.quantizer is not None:
            self.quantizer.set_update(update)

    def set_masked_group_norm(self, on: bool) -> None:
        """Switch ``cfg.feature_encoder.masked_group_norm``: whether a group-norm encoder's
        statistics skip each row's padding. No parameter depends on it, so the same weights
        serve both (the inference engine turns it on to batch group-norm models exactly)."""
        fe = replace(self.cfg.feature_encoder, masked_group_norm=on)
        self.cfg = replace(self.cfg, feature_encoder=fe)
        self.feature_encoder.cfg = fe

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

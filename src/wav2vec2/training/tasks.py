"""Tasks: what one micro-batch means for a given objective.

The trainer owns the loop (accumulation, precision, clipping, checkpoints, logging); a task
owns the forward pass, its statistics and its health checks. Pretraining and CTC
fine-tuning are two tasks over the same trainer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor

from wav2vec2 import losses
from wav2vec2.decoding import GreedyDecoder
from wav2vec2.metrics import error_counts, rates
from wav2vec2.models.masking import sample_masks
from wav2vec2.models.wav2vec2 import Wav2Vec2Model
from wav2vec2.training.feature_cache import FeatureCache
from wav2vec2.vocab import Vocabulary


@dataclass
class StepOutput:
    loss: Tensor  # summed over the micro-batch's sample_size (fairseq convention)
    sample_size: int
    # Additive statistics, summed over micro-batches and ranks before ``summarize``.
    stats: dict[str, float] = field(default_factory=dict)


class Task(Protocol):
    name: str
    best_key: str  # validation metric that selects the best checkpoint (lower is better)

    # Whether every trainable parameter gets a gradient in every training step; False
    # makes DDP look for unused ones (find_unused_parameters).
    uses_every_parameter: bool

    def on_update(self, model: Wav2Vec2Model, update: int) -> None: ...

    def forward(self, model: Wav2Vec2Model, batch, generator: torch.Generator) -> StepOutput: ...

    def valid_forward(
        self, model: Wav2Vec2Model, batch, generator: torch.Generator
    ) -> StepOutput: ...

    def summarize(self, sums: dict[str, float]) -> dict[str, float]: ...

    def progress(self, metrics: dict[str, float]) -> dict[str, str]:
        """What the progress bar shows after an update (the loop knows no metric names)."""
        ...

    def health(self, history: list[dict[str, float]], update: int, model=None) -> list[str]: ...

    def valid_health(self, valid: dict[str, float], update: int) -> list[str]: ...


def _lengths(batch) -> Tensor | None:
    """Pass lengths only when the batch is padded (pretraining crops to equal lengths, like
    fairseq, so group-norm encoders see no padding)."""
    return batch.lengths if bool((batch.lengths < batch.waveforms.shape[1]).any()) else None


class PretrainTask:
    """The wav2vec 2.0 objective: contrastive + diversity + feature penalty (sec. 3.2)."""

    name = "pretrain"
    best_key = "loss"
    # The mask embedding joins the graph through torch.where even when no step is masked,
    # and LayerDrop gives dropped blocks zero gradients.
    uses_every_parameter = True

    # Updates before collapse warnings may fire: the SMALL recipe leaves chance after
    # 150-350 updates (docs/pretraining.md), so an earlier warning would be a false alarm.
    def __init__(self, warn_after: int = 500):
        self.warn_after = warn_after
        self._warned: set[str] = set()

    def on_update(self, model: Wav2Vec2Model, update: int) -> None:
        model.set_update(update)  # Gumbel temperature annealing

    def forward(self, model, batch, generator) -> StepOutput:
        out = model.pretrain(batch.waveforms, _lengths(batch), generator=generator)
        loss = losses.pretraining_loss(out, model.cfg.pretraining)
        correct, count = losses.contrastive_accuracy(out.logits.detach())
        n = loss.sample_size
        stats = {
            "loss": loss.total.item(),
            "contrastive": loss.contrastive.item(),
            "diversity": loss.diversity.item() * n,
            "feature_penalty": loss.feature_penalty.item() * n,
            "correct": float(correct),
            "count": float(count),
            "code_perplexity": out.code_perplexity.item(),
            "prob_perplexity": out.prob_perplexity.item(),
            "temperature": out.temperature,
            "batches": 1.0,
            "sample_size": float(n),
        }
        return StepOutput(loss.total, n, stats)

    valid_forward = forward

    def summarize(self, sums: dict[str, float]) -> dict[str, float]:
        n = max(sums.get("sample_size", 0.0), 1.0)
        b = max(sums.get("batches", 0.0), 1.0)
        return {
            "loss": sums["loss"] / n,  # per masked step, nats
            "contrastive": sums["contrastive"] / n,
            "diversity": sums["diversity"] / n,
            "feature_penalty": sums["feature_penalty"] / n,
            "accuracy": sums["correct"] / max(sums["count"], 1.0),
            "code_perplexity": sums["code_perplexity"] / b,
            "prob_perplexity": sums["prob_perplexity"] / b,
            "temperature": sums["temperature"] / b,
            "masked_steps": sums["sample_size"],
        }

    def progress(self, metrics: dict[str, float]) -> dict[str, str]:
        return {
            "loss": f"{metrics['loss']:.3f}",
            "lr": f"{metrics['lr']:.2e}",
            "acc": f"{metrics['accuracy']:.3f}",
        }

    def valid_health(self, valid: dict[str, float], update: int) -> list[str]:
        return []

    def health(self, history: list[dict[str, float]], update: int, model=None) -> list[str]:
        """The two failure modes users of fairseq and transformers hit most."""
        if update < self.warn_after or not history:
            return []
        messages = []
        recent = history[-5:]
        cfg = model.cfg if model is not None else None
        gv = cfg.quantizer.num_codevectors if cfg and cfg.quantizer else 640
        k = cfg.pretraining.num_negatives if cfg and cfg.pretraining else 100
        ppl = sum(r["code_perplexity"] for r in recent) / len(recent)
        if ppl < max(4.0, 0.02 * gv) and "collapse" not in self._warned:
            self._warned.add("collapse")
            messages.append(
                f"codebook collapse: code perplexity {ppl:.1f} of {gv} possible codes at "
                f"update {update}. Usual causes: learning rate too high, diversity weight too "
                "low (model.pretraining.diversity_weight), or too little / too uniform data."
            )
        chance = 1.0 / (k + 1)
        acc = sum(r["accuracy"] for r in recent) / len(recent)
        if acc <= 2 * chance and "chance" not in self._warned and len(history) >= 5:
            self._warned.add("chance")
            messages.append(
                f"contrastive accuracy {acc:.3f} is at chance (1/{k + 1} = {chance:.3f}) after "
                f"{update} updates. Usual causes: learning rate too low or warmup too long, "
                "audio not normalized as the model expects, silent or corrupt audio, or "
                "masking too little (model.masking.time_prob)."
            )
        return messages


class CTCTask:
    """CTC fine-tuning (paper sec. 3.3 / 4.4) with fairseq's ctc criterion: zero_infinity,
    sentence-averaged loss, SpecAugment-style time and channel masking while training, and
    the Transformer frozen for the first ``freeze_updates`` (only the output layer trains).

    ``feature_cache``: the frozen feature encoder's output is taken from it, and kept there,
    for training and validation batches alike (``training.feature_cache``: exact)."""

    name = "finetune"
    best_key = "wer"
    # The frozen phase trains the head alone, and a batch without masked steps leaves the
    # mask embedding out.
    uses_every_parameter = False

    def __init__(
        self,
        vocab: Vocabulary,
        freeze_updates: int,
        warn_after: int = 0,
        feature_cache: FeatureCache | None = None,
    ):
        self.vocab = vocab
        self.feature_cache = feature_cache
        self.freeze_updates = freeze_updates
        self.warn_after = warn_after  # updates after unfreezing before the blank check
        self.decoder = GreedyDecoder(vocab)
        self.update = 0
        self._warned = False

    def on_update(self, model: Wav2Vec2Model, update: int) -> None:
        self.update = update

    def _logits(self, model: Wav2Vec2Model, batch, generator, train: bool) -> tuple[Tensor, Tensor]:
        """(B, T, vocab) emissions and (B,) valid frames: masked while training."""
        mask_time = mask_channel = None
        if train:
            mask_time, mask_channel = sample_masks(
                model.cfg.masking,
                len(batch.lengths),
                frames=model.cfg.feature_encoder.num_frames(batch.waveforms.shape[1]),
                channels=model.cfg.transformer.dim,
                frame_lengths=model.frame_lengths(batch.lengths),
                generator=generator,
                device=batch.waveforms.device,
            )
        latents = None
        if self.feature_cache is not None:
            latents = self.feature_cache.latents(
                model.feature_encoder, batch.waveforms, batch.lengths
            )
        out = model.ctc(
            batch.waveforms, batch.lengths, mask_time=mask_time, mask_channel=mask_channel,
            generator=generator, freeze_encoder=train and self.update < self.freeze_updates,
            latents=latents,
        )  # fmt: skip
        return out.logits, out.frame_lengths

    def _step(self, model, batch, generator, train: bool) -> StepOutput:
        logits, frame_lengths = self._logits(model, batch, generator, train)
        log_probs = F.log_softmax(logits.float(), dim=-1).transpose(0, 1)  # (T, B, V)
        targets = batch.targets[batch.targets >= 0]  # concatenated labels
        loss = F.ctc_loss(
            log_probs, targets, frame_lengths, batch.target_lengths,
            blank=self.vocab.blank, reduction="sum", zero_infinity=True,
        )  # fmt: skip
        n = len(batch.lengths)  # fairseq sentence_avg: normalize by sentences
        stats = {
            "loss": loss.item(),
            "sentences": float(n),
            "sample_size": float(n),
            "letters": float(batch.target_lengths.sum()),
        }
        if not train:
            hyps = self.decoder.decode(logits.detach(), frame_lengths)
            refs = [self.vocab.decode(t[t >= 0].tolist()) for t in batch.targets.cpu()]
            stats.update(error_counts(refs, [h.text for h in hyps]))
            stats["empty_hypotheses"] = float(sum(not h.text for h in hyps))
            best = logits.detach().argmax(-1)
            valid = torch.arange(best.shape[1], device=best.device)[None] < frame_lengths[:, None]
            stats["blank_frames"] = float(((best == self.vocab.blank) & valid).sum())
            stats["frames"] = float(valid.sum())
        return StepOutput(loss, n, stats)

    def forward(self, model, batch, generator) -> StepOutput:
        return self._step(model, batch, generator, train=True)

    def valid_forward(self, model, batch, generator) -> StepOutput:
        return self._step(model, batch, generator, train=False)

    def summarize(self, sums: dict[str, float]) -> dict[str, float]:
        out = {
            "loss": sums["loss"] / max(sums["sentences"], 1.0),  # per utterance, nats
            "loss_per_letter": sums["loss"] / max(sums["letters"], 1.0),
            "frozen": float(self.update < self.freeze_updates),
        }
        if "words" in sums:
            out.update(rates(sums))
            out["empty_hypotheses"] = sums["empty_hypotheses"] / max(sums["sentences"], 1.0)
            out["blank_frames"] = sums["blank_frames"] / max(sums["frames"], 1.0)
        return out

    def progress(self, metrics: dict[str, float]) -> dict[str, str]:
        return {"loss": f"{metrics['loss']:.3f}", "lr": f"{metrics['lr']:.2e}"}

    def health(self, history: list[dict[str, float]], update: int, model=None) -> list[str]:
        return []

    def valid_health(self, valid: dict[str, float], update: int) -> list[str]:
        """The failure users of fairseq and transformers report most: only blanks."""
        if self._warned or update < self.freeze_updates + self.warn_after:
            return []
        if valid.get("empty_hypotheses", 0.0) < 0.9:
            return []
        self._warned = True
        return [
            # "Empty" also covers frames that are all word boundaries: no letter at all.
            f"the model emits only blanks ({100 * valid['empty_hypotheses']:.0f}% of validation "
            f"transcripts are empty; {100 * valid['blank_frames']:.0f}% of frames are blank, the "
            f"rest word boundaries) at "
            f"update {update}. Usual causes: too few updates after unfreezing (fairseq's "
            "recipes run thousands), a learning rate too high (stuck) or too low, the "
            "Transformer frozen for too long (freeze_updates), labels that do not match the "
            "dictionary, or audio normalized differently from pretraining."
        ]

"""Tasks: what one micro-batch means for a given objective.

The trainer owns the loop (accumulation, precision, clipping, checkpoints, logging); a task
owns the forward pass, its statistics and its health checks. Pretraining and CTC
fine-tuning are two tasks over the same trainer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol

import torch
from torch import Tensor

from wav2vec2.models.wav2vec2 import Wav2Vec2Model


@dataclass
class StepOutput:
    loss: Tensor  # summed over the micro-batch's sample_size (fairseq convention)
    sample_size: int
    # Additive statistics, summed over micro-batches and ranks before ``summarize``.
    stats: dict[str, float] = field(default_factory=dict)


class Task(Protocol):
    name: str
    best_key: str  # validation metric that selects the best checkpoint (lower is better)

    def on_update(self, model: Wav2Vec2Model, update: int) -> None: ...

    def forward(self, model: Wav2Vec2Model, batch, generator: torch.Generator) -> StepOutput: ...

    def valid_forward(
        self, model: Wav2Vec2Model, batch, generator: torch.Generator
    ) -> StepOutput: ...

    def summarize(self, sums: dict[str, float]) -> dict[str, float]: ...

    def health(self, history: list[dict[str, float]], update: int) -> list[str]: ...


def _lengths(batch) -> Tensor | None:
    """Pass lengths only when the batch is padded (pretraining crops to equal lengths, like
    fairseq, so group-norm encoders see no padding)."""
    return batch.lengths if bool((batch.lengths < batch.waveforms.shape[1]).any()) else None


class PretrainTask:
    """The wav2vec 2.0 objective: contrastive + diversity + feature penalty (sec. 3.2)."""

    name = "pretrain"
    best_key = "loss"

    def __init__(self, warn_after: int = 200):
        self.warn_after = warn_after  # updates before collapse warnings may fire
        self._warned: set[str] = set()

    def on_update(self, model: Wav2Vec2Model, update: int) -> None:
        model.set_update(update)  # Gumbel temperature annealing

    def forward(self, model, batch, generator) -> StepOutput:
        out = model.pretrain(batch.waveforms, _lengths(batch), generator=generator)
        loss = out.loss
        n = loss.sample_size
        stats = {
            "loss": loss.total.item(),
            "contrastive": loss.contrastive.item(),
            "diversity": loss.diversity.item() * n,
            "feature_penalty": loss.feature_penalty.item() * n,
            "correct": float(out.correct),
            "count": float(out.count),
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


def is_finite(x: float) -> bool:
    return math.isfinite(x)

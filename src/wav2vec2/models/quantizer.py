"""Gumbel-softmax product quantizer Z -> Q (paper sec. 2 and eq. 1).

Each latent picks one entry from each of G codebooks of V entries; the chosen entries are
concatenated. Training uses the straight-through hard Gumbel-softmax (computed in fp32), so
the forward pass uses a one-hot choice while gradients flow through the soft probabilities;
evaluation uses the argmax.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wav2vec2.config import QuantizerConfig


@dataclass(frozen=True)
class QuantizerOutput:
    quantized: Tensor  # (N, codevector_dim) selected codevectors, concatenated over groups
    code_perplexity: Tensor  # () perplexity of the hard choices, summed over groups
    prob_perplexity: Tensor  # () perplexity of the softmax averaged over steps, summed
    indices: Tensor  # (N, G) chosen entry per group


def perplexity(probs: Tensor) -> Tensor:
    """exp(entropy) of the (G, V) average distribution, summed over groups (paper eq. 4).

    The 1e-7 inside the log matches fairseq and transformers.
    """
    return torch.exp(-torch.sum(probs * torch.log(probs + 1e-7), dim=-1)).sum()


class GumbelQuantizer(nn.Module):
    def __init__(self, cfg: QuantizerConfig, input_dim: int):
        super().__init__()
        if cfg.codevector_dim % cfg.groups:
            raise ValueError("codevector_dim must be divisible by the number of groups")
        self.cfg = cfg
        self.weight_proj = nn.Linear(input_dim, cfg.groups * cfg.entries)
        # (1, G*V, codevector_dim/G); the leading 1 keeps the fairseq/transformers layout.
        self.codevectors = nn.Parameter(
            torch.empty(1, cfg.groups * cfg.entries, cfg.codevector_dim // cfg.groups).uniform_()
        )
        nn.init.normal_(self.weight_proj.weight, mean=0.0, std=1.0)
        nn.init.zeros_(self.weight_proj.bias)
        self.temperature = cfg.temperature_start

    def set_update(self, update: int) -> None:
        """Anneal the temperature for training update ``update`` (paper sec. 4.2)."""
        self.temperature = self.cfg.temperature(update)

    def forward(self, z: Tensor, generator: torch.Generator | None = None) -> QuantizerOutput:
        """z: (N, input_dim) latents of the steps to quantize -> QuantizerOutput."""
        g, v = self.cfg.groups, self.cfg.entries
        logits = self.weight_proj(z).float().view(-1, g, v)  # (N, G, V), fp32 for the softmax
        indices = logits.argmax(dim=-1)  # (N, G)
        hard = F.one_hot(indices, v).to(logits.dtype)
        code_ppl = perplexity(hard.mean(dim=0))
        prob_ppl = perplexity(logits.softmax(dim=-1).mean(dim=0))
        if self.training:
            choice = _gumbel_softmax_hard(logits, self.temperature, generator)
            indices = choice.argmax(dim=-1)
        else:
            choice = hard
        choice = choice.to(self.codevectors.dtype).view(-1, g * v, 1)  # (N, G*V, 1)
        # Select (and, in training, weight) the codevectors, then sum within each group.
        quantized = (choice * self.codevectors).view(-1, g, v, self.codevectors.shape[-1]).sum(2)
        return QuantizerOutput(
            quantized.view(-1, g * quantized.shape[-1]), code_ppl, prob_ppl, indices
        )


def _gumbel_softmax_hard(logits: Tensor, tau: float, generator: torch.Generator | None) -> Tensor:
    """Straight-through Gumbel-softmax: one-hot forward, soft gradient (Jang et al. 2016).

    Noise comes from ``generator`` so masking, negatives and quantization are reproducible.
    """
    # Gumbel(0, 1) noise as -log(E), E ~ Exponential(1), the way torch's gumbel_softmax draws it.
    gumbels = -torch.empty_like(logits).exponential_(generator=generator).log()
    soft = ((logits + gumbels) / tau).softmax(dim=-1)
    hard = F.one_hot(soft.argmax(dim=-1), soft.shape[-1]).to(soft.dtype)
    return hard - soft.detach() + soft

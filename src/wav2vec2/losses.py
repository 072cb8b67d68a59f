"""The pretraining objective as pure functions (paper sec. 3.2, fairseq's wav2vec criterion).

L = L_m + alpha * L_d (paper eq. 2), plus fairseq's L2 feature penalty. Following fairseq,
the contrastive term is summed over masked steps and the extra terms are multiplied by the
sample size (the number of masked steps), so that dividing by the sample size when
normalizing gradients gives per-step averages.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from wav2vec2.config import PretrainingConfig
from wav2vec2.models.outputs import PretrainingOutput


def contrastive_logits(
    context: Tensor, targets: Tensor, negatives: Tensor, temperature: float
) -> Tensor:
    """Similarity logits sim(c_t, q) / kappa for the true q and K distractors (paper eq. 3).

    context: (M, D) projected transformer outputs c_t at masked steps; targets: (M, D)
    projected quantized latents q_t, step t's positive; negatives: (M, K) indices into
    ``targets`` of each step's distractors. Returns (M, 1 + K) logits with the positive at
    index 0. sim is the cosine similarity, computed in fp32. A distractor identical to the
    positive (possible: codebooks are discrete) is set to -inf so it cannot count as a wrong
    answer.

    The logits are gathered from the (M, M) cosine similarities of every context with every
    target, so no (M, K, D) tensor of distractors is formed (fairseq and transformers build
    one, (1+K) x the size of the targets, and keep it for the backward pass): smaller as
    long as M < K * D (25600 for BASE).
    """
    m = targets.shape[0]
    # F.cosine_similarity's own normalization: each vector over max(norm, 1e-8)
    c = F.normalize(context.float(), dim=-1, eps=1e-8)
    q = F.normalize(targets.float(), dim=-1, eps=1e-8)
    positive = torch.arange(m, device=targets.device)[:, None]  # (M, 1)
    index = torch.cat([positive, negatives], dim=1)  # (M, 1+K)
    logits = (c @ q.T).gather(1, index) / temperature  # (M, 1+K)
    # Equal vectors get equal ids: exact duplicates of the positive, without (M, K, D).
    ids = torch.unique(targets.detach(), dim=0, return_inverse=True)[1]  # (M,)
    same = ids[index] == ids[:, None]  # (M, 1+K)
    same[:, 0] = False
    return logits.masked_fill(same, float("-inf"))


def contrastive_loss(logits: Tensor) -> Tensor:
    """L_m = -sum_t log softmax(logits_t)[0] (paper eq. 3), summed over masked steps."""
    target = torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device)
    return F.cross_entropy(logits.float(), target, reduction="sum")


def contrastive_accuracy(logits: Tensor) -> tuple[int, int]:
    """(correct, count): steps whose positive has the strictly highest logit.

    As in fairseq, a step where every logit is equal (argmax and argmin both 0) is not
    counted as correct.
    """
    if logits.numel() == 0:
        return 0, 0
    best = logits.argmax(dim=-1) == 0
    flat = logits.argmin(dim=-1) == 0
    return int((best & ~flat).sum()), int(best.numel())


def diversity_loss(perplexity: Tensor, num_codevectors: int) -> Tensor:
    """L_d = (GV - perplexity) / GV (paper eq. 4, in fairseq's normalized form).

    Maximizing the entropy of the averaged softmax over codebook entries encourages equal
    use of all G*V entries. fairseq uses the softmax ("prob") perplexity here.
    """
    return (num_codevectors - perplexity) / num_codevectors


def feature_penalty(features: Tensor) -> Tensor:
    """Mean squared activation of the feature encoder output (fairseq's features_pen)."""
    return features.float().pow(2).mean()


@dataclass(frozen=True)
class PretrainingLoss:
    total: Tensor
    contrastive: Tensor
    diversity: Tensor  # unweighted, per step
    feature_penalty: Tensor  # unweighted
    sample_size: int  # masked steps


def pretraining_loss(parts: PretrainingOutput, weights: PretrainingConfig) -> PretrainingLoss:
    """L = L_m + alpha * L_d (paper eq. 2; L_m is eq. 3, L_d eq. 4) + the weighted feature
    penalty, from the parts ``Wav2Vec2Model.pretrain`` returns and the weights in
    ``cfg.pretraining``. Summed over the M masked steps, the extra terms times M (fairseq)."""
    sample_size = parts.logits.shape[0]
    l_m = contrastive_loss(parts.logits)
    l_d = diversity_loss(parts.prob_perplexity, parts.num_codevectors)
    # Keep this order of operations: float sums are not associative, and a run must repeat
    # the numbers of earlier runs bit for bit.
    total = l_m + weights.diversity_weight * l_d * sample_size
    if weights.feature_penalty_weight:
        total = total + weights.feature_penalty_weight * parts.feature_penalty * sample_size
    return PretrainingLoss(total, l_m, l_d, parts.feature_penalty, sample_size)

import math
from types import SimpleNamespace

import torch

from wav2vec2 import losses
from wav2vec2.config import PretrainingConfig


def test_contrastive_logits_cosine_over_temperature_and_positive_first():
    c = torch.tensor([[1.0, 0.0]])
    pos = torch.tensor([[2.0, 0.0]])
    neg = torch.tensor([[[0.0, 1.0], [-1.0, 0.0]]])
    logits = losses.contrastive_logits(c, pos, neg, 0.1)
    assert torch.allclose(logits, torch.tensor([[10.0, 0.0, -10.0]]), atol=1e-5)


def test_distractor_equal_to_positive_is_masked_out():
    c = torch.randn(2, 4)
    pos = torch.randn(2, 4)
    neg = torch.stack([pos, torch.randn(2, 4)], dim=1)  # first distractor == positive
    logits = losses.contrastive_logits(c, pos, neg, 0.1)
    assert torch.isinf(logits[:, 1]).all() and (logits[:, 1] < 0).all()
    assert torch.isfinite(losses.contrastive_loss(logits))


def test_contrastive_loss_is_summed_cross_entropy():
    logits = torch.tensor([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0]])
    expected = -(torch.log_softmax(logits, -1)[:, 0]).sum()
    assert torch.allclose(losses.contrastive_loss(logits), expected)
    assert losses.contrastive_accuracy(logits) == (1, 2)
    assert losses.contrastive_accuracy(torch.zeros(3, 5)) == (0, 3)  # ties are not correct


def test_diversity_loss_extremes():
    gv = 640
    assert losses.diversity_loss(torch.tensor(float(gv)), gv) == 0  # uniform use
    assert math.isclose(
        float(losses.diversity_loss(torch.tensor(2.0), gv)), (gv - 2) / gv, rel_tol=1e-6
    )


def test_pretraining_loss_scales_extra_terms_by_sample_size():
    logits = torch.randn(7, 11)
    # Only the parts the loss reads, as Wav2Vec2Model.pretrain returns them.
    parts = SimpleNamespace(
        logits=logits,
        prob_perplexity=torch.tensor(300.0),
        num_codevectors=640,
        feature_penalty=torch.tensor(0.5),
    )
    weights = PretrainingConfig(diversity_weight=0.1, feature_penalty_weight=10.0)
    out = losses.pretraining_loss(parts, weights)
    expected = losses.contrastive_loss(logits) + 0.1 * (340 / 640) * 7 + 10.0 * 0.5 * 7
    assert out.sample_size == 7
    assert torch.allclose(out.total, expected)

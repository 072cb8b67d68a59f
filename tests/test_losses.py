import math
from types import SimpleNamespace

import torch
import torch.nn.functional as F

from wav2vec2 import losses
from wav2vec2.config import PretrainingConfig


def test_contrastive_logits_cosine_over_temperature_and_positive_first():
    c = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    targets = torch.tensor([[2.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    negatives = torch.tensor([[1, 2], [0, 2], [0, 1]])  # (M, K) indices into targets
    logits = losses.contrastive_logits(c, targets, negatives, 0.1)
    assert torch.allclose(logits[0], torch.tensor([10.0, 0.0, -10.0]), atol=1e-5)


def test_contrastive_logits_equal_the_gathered_cosine_similarities():
    """The (M, M) similarity matrix and a gather give what fairseq and transformers compute
    from the (M, 1+K, D) candidates, gradients included."""
    gen = torch.Generator().manual_seed(0)
    c = torch.randn(40, 16, generator=gen, requires_grad=True)
    q = torch.randn(40, 16, generator=gen, requires_grad=True)
    negatives = torch.randint(0, 40, (40, 7), generator=gen)
    ours = losses.contrastive_logits(c, q, negatives, 0.1)
    candidates = torch.cat([q.unsqueeze(1), q[negatives]], dim=1)  # (M, 1+K, D)
    ref = F.cosine_similarity(c.unsqueeze(1), candidates, dim=-1) / 0.1
    ref = ref.masked_fill(
        torch.cat([torch.zeros(40, 1), negatives == torch.arange(40)[:, None]], 1).bool(),
        float("-inf"),
    )
    assert torch.allclose(ours, ref, atol=1e-5)
    (g_ours,) = torch.autograd.grad(losses.contrastive_loss(ours), c)
    (g_ref,) = torch.autograd.grad(losses.contrastive_loss(ref), c)
    assert torch.allclose(g_ours, g_ref, atol=1e-5)


def test_distractor_equal_to_positive_is_masked_out():
    q = torch.randn(3, 4)
    targets = torch.stack([q[0], q[0], q[1], q[2]])  # rows 0 and 1 are equal vectors
    c = torch.randn(4, 4)
    negatives = torch.tensor([[1, 2], [0, 3], [0, 1], [2, 0]])
    logits = losses.contrastive_logits(c, targets, negatives, 0.1)
    assert torch.isinf(logits[:2, 1]).all() and (logits[:2, 1] < 0).all()
    assert torch.isfinite(logits[2:]).all() and torch.isfinite(logits[:, [0, 2]]).all()
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

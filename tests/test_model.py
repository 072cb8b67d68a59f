"""Wav2Vec2Model's passes: what encoding pays for, and the CTC path with a frozen encoder."""

import torch

from wav2vec2 import SMALL, Wav2Vec2Model, losses


def test_encode_computes_the_feature_penalty_only_when_asked():
    model = Wav2Vec2Model(SMALL).eval()
    x = torch.randn(2, 8000)
    with torch.no_grad():
        assert model.encode(x).feature_penalty is None
        pen = model.encode(x, feature_penalty=True).feature_penalty
        expected = losses.feature_penalty(model.feature_encoder(x))
    assert torch.equal(pen, expected)


def test_frozen_encoder_trains_only_the_ctc_head():
    torch.manual_seed(0)
    model = Wav2Vec2Model(SMALL.with_overrides(vocab_size=8)).eval()
    x, lengths = torch.randn(2, 8000), torch.tensor([8000, 6000])
    free = model.ctc(x, lengths)
    frozen = model.ctc(x, lengths, freeze_encoder=True)
    assert torch.equal(free.logits, frozen.logits)  # same numbers, only the graph differs
    frozen.logits.sum().backward()
    trained = {name for name, p in model.named_parameters() if p.grad is not None}
    assert trained == {"ctc_head.weight", "ctc_head.bias"}

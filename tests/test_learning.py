"""The SMALL preset learns: a gradient step lowers the pretraining loss on a fixed batch,
and the feature encoder's gradients are scaled."""

import torch

from wav2vec2 import SMALL, Wav2Vec2Model, losses


def batch():
    g = torch.Generator().manual_seed(0)
    t = torch.arange(24000) / 16000
    x = torch.stack([torch.sin(2 * torch.pi * f * t) for f in (120.0, 220.0)])
    return x + 0.05 * torch.randn(x.shape, generator=g), torch.tensor([24000, 20000])


def fixed_pass(model, x, lengths) -> losses.PretrainingLoss:
    out = model.pretrain(x, lengths, generator=torch.Generator().manual_seed(1))
    return losses.pretraining_loss(out, model.cfg.pretraining)


def test_gradient_steps_lower_the_loss():
    torch.manual_seed(0)
    cfg = SMALL.with_overrides(**{"transformer.layerdrop": 0.0})
    model = Wav2Vec2Model(cfg).train()
    x, lengths = batch()
    opt = torch.optim.Adam(model.parameters(), lr=5e-4)
    first = fixed_pass(model, x, lengths).total.item()
    for _ in range(3):
        loss = fixed_pass(model, x, lengths)
        opt.zero_grad()
        loss.total.backward()
        opt.step()
    assert fixed_pass(model, x, lengths).total.item() < first


def test_feature_encoder_gradient_is_scaled():
    x, lengths = batch()
    grads = {}
    for scale in (1.0, 0.1):
        torch.manual_seed(0)
        cfg = SMALL.with_overrides(**{"feature_encoder.grad_scale": scale})
        cfg = cfg.with_overrides(
            **{"transformer.layerdrop": 0.0, "transformer.dropout": 0.0,
               "transformer.attention_dropout": 0.0, "transformer.encoder_input_dropout": 0.0,
               "dropout_input": 0.0, "pretraining.dropout_features": 0.0,
               "pretraining.feature_penalty_weight": 0.0}
        )  # fmt: skip
        model = Wav2Vec2Model(cfg).train()
        fixed_pass(model, x, lengths).total.backward()
        grads[scale] = (
            model.feature_encoder.blocks[0].conv.weight.grad.clone(),
            model.feature_projection.weight.grad.clone(),
        )
    enc_full, proj_full = grads[1.0]
    enc_scaled, proj_scaled = grads[0.1]

    def rel(a, b):
        return ((a - b).norm() / b.norm()).item()

    assert rel(proj_scaled, proj_full) < 1e-4  # above the encoder: unchanged
    assert rel(enc_scaled, 0.1 * enc_full) < 1e-4  # the encoder: x0.1

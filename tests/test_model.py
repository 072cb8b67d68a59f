"""Wav2Vec2Model's passes: what encoding pays for, the CTC path with a frozen encoder, and
padded batches of group-norm models (masked_group_norm)."""

import pytest
import torch

from hf_reference import CONFIGS, assert_close, hf_config, padded_batch, randomize
from wav2vec2 import SMALL, Wav2Vec2Model, losses
from wav2vec2.interop.huggingface import config_from_hf


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
    # The same numbers to float32 rounding: without gradients the first conv block runs
    # folded with its group norm, and weight norm's weight is cached.
    assert_close(free.logits, frozen.logits, "frozen vs free logits", atol=1e-5)
    frozen.logits.sum().backward()
    trained = {name for name, p in model.named_parameters() if p.grad is not None}
    assert trained == {"ctc_head.weight", "ctc_head.bias"}


GROUP_NORM = sorted(n for n, c in CONFIGS.items() if c["feat_extract_norm"] == "group")


def group_norm_model(name: str, masked: bool) -> Wav2Vec2Model:
    """A randomized CTC model of the BASE-like shape ``name`` (group-norm encoder)."""
    cfg = config_from_hf(hf_config(name).to_dict(), has_quantizer=False, has_ctc=True)
    model = randomize(Wav2Vec2Model(cfg))
    model.set_masked_group_norm(masked)
    return model


@pytest.mark.parametrize("padding", ["zeros", "noise"])
@pytest.mark.parametrize("name", GROUP_NORM)
@torch.no_grad()
def test_masked_group_norm_gives_each_padded_row_its_output_alone(name, padding):
    model = group_norm_model(name, masked=True)
    # The shortest row ends inside a first-layer frame: a padded frame mixes valid samples
    # and padding, as a receptive field that straddles the end of a row does. With noise in
    # the padding, any path from a padded sample to a valid frame would show.
    x, lengths = padded_batch()
    if padding == "noise":
        pad = torch.arange(x.shape[1])[None, :] >= lengths[:, None]
        x = torch.where(pad, torch.randn(x.shape, generator=torch.Generator().manual_seed(2)), x)
    out = model.ctc(x, lengths)
    for row, n in enumerate(lengths.tolist()):
        alone = model.ctc(x[row : row + 1, :n])
        frames = int(out.frame_lengths[row])
        assert frames == alone.logits.shape[1]
        pairs = [("features", out.encoder.features, alone.encoder.features)]
        pairs += [
            (f"hidden state {i}", a, b)
            for i, (a, b) in enumerate(
                zip(out.encoder.hidden_states, alone.encoder.hidden_states, strict=True)
            )
        ]
        pairs += [("CTC logits", out.logits, alone.logits)]
        for what, batched, single in pairs:
            assert_close(batched[row, :frames], single[0], f"row {row} {what}")


@torch.no_grad()
def test_fairseq_group_norm_is_what_padding_changes():
    """Without the mask, the statistics cover the padding (fairseq, transformers): the same
    check fails, so the test above has teeth."""
    model = group_norm_model("base_like", masked=False)
    x, lengths = padded_batch()
    batched = model.ctc(x, lengths).logits[-1, : int(model.frame_lengths(lengths)[-1])]
    alone = model.ctc(x[-1:, : int(lengths[-1])]).logits[0]
    assert (batched - alone).abs().max() > 1e-2


@pytest.mark.parametrize("lengths", ["none", "full"])
@torch.no_grad()
def test_masked_group_norm_without_padding_changes_nothing(lengths):
    model = group_norm_model("base_like", masked=False)
    x, _ = padded_batch()
    valid = None if lengths == "none" else torch.full((len(x),), x.shape[1])
    fairseq = model.ctc(x, valid)
    model.set_masked_group_norm(True)
    masked = model.ctc(x, valid)
    assert torch.equal(masked.logits, fairseq.logits)
    assert torch.equal(masked.encoder.features, fairseq.encoder.features)
    # The switch leaves the parameters alone: checkpoints load either way.
    assert (
        model.cfg.feature_encoder.masked_group_norm and model.feature_encoder.cfg.masked_group_norm
    )


@pytest.mark.parametrize("masked", [False, True])
def test_first_block_folds_conv_and_group_norm_without_gradients(masked):
    """Inference and a frozen encoder compute GroupNorm(conv(x)) of the first block from the
    frames' moments (ConvBlock._conv_group_norm_folded): equal to the plain path to float32
    rounding, padded rows included, padded frames zero."""
    model = group_norm_model("base_like", masked=masked)
    block = model.feature_encoder.blocks[0]
    with torch.no_grad():  # norms away from their init, so the affine part is exercised
        block.norm.weight.mul_(3.0).add_(0.5)
        block.norm.bias.add_(1.0)
        block.conv.weight.mul_(5.0)
    x, lengths = padded_batch()
    frames = model.feature_encoder._norm_lengths(lengths)
    with torch.enable_grad():
        plain = block(x[:, None], frames).detach()
    with torch.no_grad():
        assert block._foldable(x[:, None])
        folded = block(x[:, None], frames)
    assert_close(folded, plain, "folded first block", atol=1e-5)
    if masked:
        for row, n in enumerate(frames.tolist()):
            assert not folded[row, :, n:].any()


def test_positional_conv_weight_is_computed_once_until_the_weights_change():
    model = Wav2Vec2Model(SMALL).eval()
    pos = model.encoder.pos_conv
    x = torch.randn(1, 50, SMALL.transformer.dim)
    with torch.no_grad():
        first = pos(x)
        cached = pos._frozen._value
        assert torch.equal(pos(x), first) and pos._frozen._value is cached
        pos.conv.parametrizations.weight.original0.mul_(2.0)  # e.g. an optimizer step
        moved = pos(x)
        assert pos._frozen._value is not cached
    with torch.enable_grad():
        assert_close(moved, pos(x).detach(), "after an update", atol=1e-6)
    with torch.inference_mode():  # computed in inference mode, then used outside it
        pos.conv.parametrizations.weight.original0.mul_(0.5)
        again = pos(x)
    with torch.no_grad():
        assert torch.equal(pos(x), again)


def test_layerdrop_seed_drops_the_same_blocks_and_every_parameter_gets_a_gradient():
    """With ``layerdrop_seed`` set (the trainer sets it per update), every forward drops the
    same blocks whatever its generator, and a dropped block's parameters get zero gradients
    (not none), so DDP needs no find_unused_parameters."""
    cfg = SMALL.with_overrides(**{"transformer.layerdrop": 0.5, "transformer.dropout": 0.0})
    encoder = Wav2Vec2Model(cfg).encoder.train()
    x = torch.randn(1, 20, cfg.transformer.dim)
    runs = []
    for seed in (1, 2):
        encoder.layerdrop_seed = 7
        _, hidden = encoder(x, generator=torch.Generator().manual_seed(seed))
        # block i's input is hidden[i], its output hidden[i + 1]: equal when it was dropped
        dropped = [torch.equal(a, b) for a, b in zip(hidden[:-1], hidden[1:])]
        runs.append(dropped)
    assert runs[0] == runs[1] and any(runs[0]) and not all(runs[0])
    encoder.zero_grad(set_to_none=True)
    encoder(x)[0].sum().backward()
    for layer, dropped in zip(encoder.layers, runs[0]):
        grads = [p.grad for p in layer.parameters()]
        assert all(g is not None for g in grads)
        assert all(not g.any() for g in grads) == dropped


def test_stacked_qkv_weights_follow_the_parameters():
    """Attention multiplies by q/k/v stacked into one matrix, kept while no gradient is
    wanted: it must follow in-place changes of the separate parameters (a load, a step)."""
    attention = Wav2Vec2Model(SMALL).encoder.layers[0].attention.eval()
    x = torch.randn(2, 30, SMALL.transformer.dim)
    with torch.no_grad():
        before = attention(x, None)
        attention.k_proj.weight.mul_(-1.0)
        attention.v_proj.bias.add_(1.0)
        after = attention(x, None)
    with torch.enable_grad():
        expected = attention(x, None).detach()
    assert (after - before).abs().max() > 1e-2
    assert_close(after, expected, "no-grad attention after an update", atol=1e-6)


def test_activation_checkpointing_gives_the_same_outputs_and_gradients():
    cfg = SMALL.with_overrides(**{"transformer.layerdrop": 0.0})
    model = Wav2Vec2Model(cfg).train()
    x = torch.randn(2, 8000)
    results = []
    for on in (False, True):
        model.encoder.activation_checkpointing = on
        model.zero_grad(set_to_none=True)
        torch.manual_seed(0)  # dropout is on: the same masks, replayed by the checkpoint
        out = model.encode(x).last_hidden_state
        out.square().sum().backward()
        results.append((out.detach(), {n: p.grad for n, p in model.named_parameters()}))
    (a, grads_a), (b, grads_b) = results
    assert torch.equal(a, b)
    for name, g in grads_a.items():
        if g is not None:
            assert_close(grads_b[name], g, name, atol=1e-5)


@pytest.mark.parametrize("train", [False, True], ids=["inference", "training"])
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_frames_major_encoder_equals_the_channels_first_one(name, train):
    """The feature encoder's CPU form (ConvBlock.forward_frames: (B, T, C) tensors, the
    convs channels-last, the norms along that layout) computes what the (B, C, T) form
    computes: in float32 here, the outputs of a padded batch and, training, the gradients
    of the input and of every encoder weight."""
    model = group_norm_model(name, masked=True) if name in GROUP_NORM else None
    if model is None:
        cfg = config_from_hf(hf_config(name).to_dict(), has_quantizer=False, has_ctc=True)
        model = randomize(Wav2Vec2Model(cfg))
    encoder = model.feature_encoder.train(train)
    assert encoder.cfg.grad_scale > 0
    x, lengths = padded_batch()
    results = {}
    for route in ("channels", "frames"):
        encoder.conv_route = route
        assert encoder.frames_major(x) == (route == "frames")
        wave = x.clone().requires_grad_(train)
        with torch.set_grad_enabled(train):
            out = encoder(wave, lengths)
        grads = []
        if train:
            out.square().mean().backward()
            grads = [wave.grad, *(p.grad for p in encoder.parameters())]
            encoder.zero_grad(set_to_none=True)
        results[route] = [out.detach(), *grads]
    pairs = zip(results["channels"], results["frames"], strict=True)
    for i, (channels, frames) in enumerate(pairs):
        # relative to the tensor's size; a conv bias before a group norm has no gradient
        # but rounding noise (the norm takes its mean out), which both routes leave tiny
        scale = max(channels.abs().max().item(), 1e-2)
        assert_close(frames / scale, channels / scale, f"{name} tensor {i} (relative)", 1e-5)


def test_encoder_runs_frames_major_on_the_cpu_for_inference_and_half_precision():
    encoder = Wav2Vec2Model(SMALL).feature_encoder.eval()
    x = torch.randn(1, 4000)
    assert encoder.conv_route == "auto"
    assert not encoder.frames_major(x)  # fp32 training: channels-first (measured faster)
    with torch.no_grad():
        assert encoder.frames_major(x)
        out = encoder(x)  # (B, C, T) as ever, frames-major in memory
        assert out.shape[1] == SMALL.feature_encoder.conv_layers[-1][0]
        assert out.transpose(1, 2).is_contiguous()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert encoder.frames_major(x)
        with torch.no_grad():
            assert encoder(x).dtype == torch.bfloat16


def test_weight_caches_follow_a_fused_optimizer_step_once_versions_are_bumped():
    """Inference caches weights derived from parameters (stacked q/k/v, weight norm), keyed
    on their version counters. torch's fused AdamW writes the weights without bumping them,
    so the trainer bumps them after each step; a cached forward then equals a fresh one."""
    from dataclasses import replace

    torch.manual_seed(0)
    model = Wav2Vec2Model(replace(SMALL, quantizer=None, pretraining=None, vocab_size=8))
    x = torch.randn(1, 8000)
    with torch.no_grad():
        model.eval().ctc(x)  # fills the caches
    params = [p for p in model.parameters()]
    for p in params:
        p.grad = torch.randn_like(p)
    versions = [p._version for p in params]
    torch.optim.AdamW(params, lr=1e-2, fused=True).step()
    assert [p._version for p in params] == versions  # the hazard the trainer guards against
    torch.autograd.graph.increment_version(params)
    fresh = Wav2Vec2Model(model.cfg).eval()
    fresh.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert torch.equal(model.ctc(x).logits, fresh.ctc(x).logits)

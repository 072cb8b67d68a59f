"""The CPU dropout (wav2vec2.models.dropout) and the attention that uses it while training."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from wav2vec2.models.dropout import Dropout, dropout, keep_mask
from wav2vec2.models.transformer import attend


def test_mask_drops_p_rounded_to_a_multiple_of_2_to_the_minus_16():
    torch.manual_seed(0)
    n = 1 << 22  # the drop rate's standard error is under 1.5e-4
    for p in (0.05, 0.1, 0.5, 0.9):
        dropped = 1.0 - keep_mask((n,), p, torch.device("cpu")).float().mean().item()
        assert abs(dropped - round(p * 65536) / 65536) < 1e-3, p


def test_every_bit_of_the_random_numbers_is_uniform():
    """The 16-bit numbers are cut from full-range 64-bit draws: torch's default range for
    int64 leaves the sign bit 0, which would keep every fourth number non-negative."""
    torch.manual_seed(0)
    n = 1 << 20
    kept_with = [keep_mask((n,), p, torch.device("cpu")) for p in (0.25, 0.5, 0.75)]
    for mask, p in zip(kept_with, (0.25, 0.5, 0.75), strict=True):
        # each of the 4 positions in a 64-bit word on its own
        rates = mask.view(-1, 4).float().mean(0)
        assert torch.allclose(rates, torch.full((4,), 1 - p), atol=5e-3), (p, rates)


def test_kept_elements_are_scaled_so_the_expectation_is_the_input():
    torch.manual_seed(0)
    x = torch.ones(1 << 22)
    y = dropout(x, 0.1)
    threshold = round(0.1 * 65536)
    scale = 65536 / (65536 - threshold)
    kept = y != 0
    assert torch.equal(y[kept], torch.full_like(y[kept], scale))
    assert abs(y.mean().item() - 1.0) < 2e-3


def test_gradient_is_the_mask_times_the_scale():
    torch.manual_seed(0)
    x = torch.randn(64, 128, requires_grad=True)
    y = dropout(x, 0.3)
    y.sum().backward()
    scale = 65536 / (65536 - round(0.3 * 65536))
    expected = (y.detach() != 0).float() * scale
    assert torch.equal(x.grad, expected)


def test_seeded_draws_repeat_and_differ_between_seeds():
    x = torch.randn(1000)
    torch.manual_seed(1)
    a = dropout(x, 0.5)
    torch.manual_seed(1)
    b = dropout(x, 0.5)
    torch.manual_seed(2)
    c = dropout(x, 0.5)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_identity_when_off_zero_at_one_and_a_bad_p_is_refused():
    x = torch.randn(10, 10)
    assert dropout(x, 0.0) is x
    assert dropout(x, 0.5, training=False) is x
    assert torch.equal(dropout(x, 1.0), torch.zeros_like(x))
    with pytest.raises(ValueError, match="not in"):
        dropout(x, 1.5)
    with pytest.raises(ValueError, match="not in"):
        Dropout(-0.1)


def test_keeps_the_dtype_and_the_module_has_no_state():
    torch.manual_seed(0)
    assert dropout(torch.randn(8, 8, dtype=torch.bfloat16), 0.1).dtype == torch.bfloat16
    module = Dropout(0.1)
    assert module.state_dict() == {}
    assert "p=0.1" in repr(module)
    x = torch.randn(8, 8)
    assert module.eval()(x) is x


def test_attention_without_dropout_is_sdpa():
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 50, 16) for _ in range(3))
    mask = torch.ones(2, 1, 1, 50, dtype=torch.bool)
    mask[1, ..., 37:] = False
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert torch.equal(attend(q, k, v, mask, 0.0), expected)
    # a p that rounds to no drop takes the path with dropout: the same numbers to rounding
    got = attend(q, k, v, mask, 1e-9)
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-5)
    # rows never look at masked keys
    v2 = v.clone()
    v2[1, :, 37:] = 1e6
    torch.testing.assert_close(attend(q, k, v2, mask, 1e-9)[1], expected[1], atol=1e-5, rtol=1e-5)


def test_attention_dropout_drops_weights_and_rescales_the_rest():
    """With dropout, the output is the dropped-out weights times v: with v = identity
    rows the output rows are the weights themselves."""
    torch.manual_seed(0)
    t = 64
    q, k = torch.randn(1, 1, t, 8), torch.randn(1, 1, t, 8)
    v = torch.eye(t)[None, None]
    weights = torch.softmax(q @ k.transpose(-2, -1) / 8**0.5, -1)
    got = attend(q, k, v, None, 0.25)
    kept = got != 0
    dropped = 1 - kept.float().mean().item()
    assert 0.2 < dropped < 0.3
    scale = 65536 / (65536 - round(0.25 * 65536))
    torch.testing.assert_close(got[kept], weights[kept] * scale)

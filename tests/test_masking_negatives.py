import pytest
import torch

from wav2vec2.config import MaskingConfig
from wav2vec2.models.masking import compute_span_mask, sample_masks
from wav2vec2.models.negatives import sample_negatives, to_flat_time_indices


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_mask_rate_matches_paper():
    # p = 0.065 start probability x span 10 (fairseq mask_prob 0.65) masks about 49%.
    mask = compute_span_mask((64, 500), 0.65, 10, generator=gen())
    assert 0.44 < mask.float().mean().item() < 0.54


def test_sample_masks_draws_time_then_channel_from_one_generator():
    # The draw order is part of every training run's random stream: time, then channel.
    cfg = MaskingConfig(time_prob=0.5, channel_prob=0.3, channel_min_masks=1)
    lengths = torch.tensor([120, 90])
    time, channel = sample_masks(cfg, 2, 120, 64, frame_lengths=lengths, generator=gen(4))
    g = gen(4)
    expected_time = compute_span_mask(
        (2, 120), cfg.time_prob, cfg.time_length, valid_lengths=lengths,
        min_masks=cfg.time_min_masks, require_same_masks=cfg.require_same_masks, generator=g,
    )  # fmt: skip
    expected_channel = compute_span_mask(
        (2, 64), cfg.channel_prob, cfg.channel_length, min_masks=1, generator=g
    )
    assert torch.equal(time, expected_time) and torch.equal(channel, expected_channel)
    # A size of None draws nothing: the generator's stream is left as it was.
    g = gen(4)
    assert sample_masks(cfg, 2, None, None, generator=g) == (None, None)
    assert torch.equal(g.get_state(), gen(4).get_state())


def test_mask_is_deterministic_and_padding_aware():
    lengths = torch.tensor([200, 120, 57])
    a = compute_span_mask((3, 200), 0.65, 10, valid_lengths=lengths, min_masks=2, generator=gen(3))
    b = compute_span_mask((3, 200), 0.65, 10, valid_lengths=lengths, min_masks=2, generator=gen(3))
    assert torch.equal(a, b)
    for row, n in zip(a, lengths):
        assert not row[n:].any()
        assert row[:n].any()


def test_require_same_masks_and_min_masks():
    lengths = torch.tensor([300, 100, 40])
    m = compute_span_mask(
        (3, 300), 0.65, 10, valid_lengths=lengths, min_masks=2, require_same_masks=True,
        generator=gen(1),
    )  # fmt: skip
    counts = m.sum(1)
    assert (counts == counts[0]).all() and counts[0] >= 10
    tiny = compute_span_mask((4, 50), 0.0001, 10, min_masks=2, generator=gen(2))
    assert (tiny.sum(1) >= 10).all()  # two spans of 10 at least (they may overlap)


def test_no_overlap_spans_keep_their_distance():
    m = compute_span_mask((8, 300), 0.5, 10, no_overlap=True, min_space=2, generator=gen(5))
    for row in m:
        idx = row.nonzero().squeeze(1).tolist()
        runs, start = [], idx[0]
        for a, b in zip(idx, idx[1:] + [None]):
            if b is None or b != a + 1:
                runs.append((start, a))
                start = b
        assert all(e - s + 1 == 10 for s, e in runs)  # whole spans, never merged
        assert all(s2 - e1 > 2 for (_, e1), (s2, _) in zip(runs, runs[1:]))


def test_negatives_same_utterance_never_self():
    mask = torch.zeros(3, 40, dtype=torch.bool)
    mask[0, 3:20] = True
    mask[1, 5:9] = True
    mask[2, 10:30] = True
    neg = sample_negatives(mask, 100, gen(0))
    counts = mask.sum(1)
    offsets = torch.cumsum(counts, 0) - counts
    utt = torch.repeat_interleave(torch.arange(3), counts)
    m = torch.arange(len(utt))
    assert neg.shape == (int(counts.sum()), 100)
    assert (neg != m[:, None]).all()  # never the positive itself
    lo, hi = offsets[utt][:, None], (offsets + counts)[utt][:, None]
    assert ((neg >= lo) & (neg < hi)).all()  # only masked steps of the same utterance
    # every other masked step of a 4-step utterance is reachable
    assert set(neg[counts[0] : counts[0] + 1].flatten().tolist()) == {18, 19, 20}


def test_negatives_in_transformers_layout():
    mask = torch.zeros(2, 10, dtype=torch.bool)
    mask[0, [1, 2, 5]] = True
    mask[1, [0, 9]] = True
    neg = sample_negatives(mask, 4, gen(0))
    flat = to_flat_time_indices(mask, neg)
    assert flat.shape == (2, 10, 4)
    assert set(flat[1, 0].tolist()) == {19} and set(flat[1, 9].tolist()) == {10}
    assert (flat[0, 0] == 0).all()


def test_zero_mask_prob_masks_nothing():
    # fairseq applies no time mask at all when mask_prob is 0, not even min_masks spans.
    from wav2vec2 import SMALL, Wav2Vec2Model

    cfg = SMALL.with_overrides(**{"masking.time_prob": 0.0, "masking.time_min_masks": 2})
    model = Wav2Vec2Model(cfg)
    time, _ = sample_masks(cfg.masking, 2, 100, None, frame_lengths=torch.tensor([100, 80]))
    assert time is None
    with pytest.raises(ValueError, match="time_prob is 0"):
        model.pretrain(torch.randn(1, 16000), generator=gen())

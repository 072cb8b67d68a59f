"""Numerical parity with transformers for the same weights (fp32, tolerance 1e-4)."""

from __future__ import annotations

import pytest
import torch
import transformers

from hf_reference import (
    CONFIGS,
    assert_close,
    attention_mask,
    make_ctc,
    make_pretraining,
    padded_batch,
    save_with_processor,
)
from wav2vec2.checkpoint.model_dir import save_model_dir
from wav2vec2.decoding import GreedyDecoder
from wav2vec2.interop.huggingface import write_hf_dir
from wav2vec2.loading import load_model, load_pretrained, read_checkpoint
from wav2vec2.losses import pretraining_loss
from wav2vec2.models.masking import sample_masks
from wav2vec2.models.negatives import sample_negatives, to_flat_time_indices


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def ctc_pair(request, tmp_path_factory):
    hf = make_ctc(request.param)
    path = save_with_processor(hf, tmp_path_factory.mktemp(request.param))
    return request.param, hf, load_model(str(path)), path


@pytest.mark.parametrize("use_mask", [True, False], ids=["attention_mask", "no_mask"])
@torch.no_grad()
def test_hidden_states_and_logits_match(ctc_pair, use_mask):
    _, hf, ours, _ = ctc_pair
    x, lengths = padded_batch()
    mask = attention_mask(lengths, x.shape[1]) if use_mask else None
    ref = hf(x, attention_mask=mask, output_hidden_states=True)
    out = ours.ctc(x, lengths if use_mask else None)
    assert len(out.encoder.hidden_states) == len(ref.hidden_states)
    for i, (a, b) in enumerate(zip(out.encoder.hidden_states, ref.hidden_states)):
        assert_close(a, b, f"hidden state {i}")
    assert_close(out.logits, ref.logits, "CTC logits")


@torch.no_grad()
def test_greedy_transcripts_identical(ctc_pair):
    name, hf, ours, path = ctc_pair
    x, lengths = padded_batch(seed=3)
    use_mask = CONFIGS[name]["feat_extract_norm"] == "layer"
    mask = attention_mask(lengths, x.shape[1]) if use_mask else None
    ref_ids = hf(x, attention_mask=mask).logits.argmax(-1)
    processor = transformers.Wav2Vec2Processor.from_pretrained(path)
    out = ours.ctc(x, lengths if use_mask else None)
    hyps = GreedyDecoder(load_pretrained(path).vocab).decode(out.logits, out.frame_lengths)
    frame_lengths = out.frame_lengths if use_mask else [x.shape[1]] * len(x)
    for hyp, ids, n in zip(hyps, ref_ids, frame_lengths):
        theirs = processor.decode(ids[: int(n)])
        assert hyp.text, "random model should still emit letters"
        # transformers keeps the double spaces of "| <pad> |"; we normalize whitespace.
        assert hyp.text == " ".join(theirs.split())


@pytest.mark.parametrize("name", sorted(CONFIGS))
@torch.no_grad()
def test_pretraining_objective_matches(name, tmp_path, monkeypatch):
    """Same mask and distractors fed to both: contrastive loss, diversity loss, perplexity
    and the projected outputs agree with Wav2Vec2ForPreTraining, in eval and in train mode
    (dropouts 0, Gumbel noise switched off on both sides)."""
    hf = make_pretraining(name)
    hf.save_pretrained(tmp_path)
    ours = load_model(str(tmp_path))
    x, lengths = padded_batch()
    frames = ours.cfg.feature_encoder.num_frames(x.shape[1])
    frame_lengths = ours.frame_lengths(lengths)
    gen = torch.Generator().manual_seed(0)
    mask, _ = sample_masks(
        ours.cfg.masking, len(x), frames, None, frame_lengths=frame_lengths, generator=gen
    )
    negatives = sample_negatives(mask, hf.config.num_negatives, gen)
    use_mask = CONFIGS[name]["feat_extract_norm"] == "layer"

    def run_both():
        ref = hf(
            x,
            attention_mask=attention_mask(lengths, x.shape[1]) if use_mask else None,
            mask_time_indices=mask,
            sampled_negative_indices=to_flat_time_indices(mask, negatives),
        )
        out = ours.pretrain(
            x, lengths if use_mask else None, mask_time=mask, negatives=negatives, generator=gen
        )
        assert_close(out.context, ref.projected_states[mask], "projected context")
        assert_close(out.targets, ref.projected_quantized_states[mask], "projected targets")
        loss = pretraining_loss(out, ours.cfg.pretraining)
        assert_close(loss.contrastive, ref.contrastive_loss, "contrastive loss")
        return ref, out

    ref, out = run_both()  # eval: argmax codes, transformers reports the code perplexity
    assert_close(out.code_perplexity, ref.codevector_perplexity, "code perplexity")
    gv = ours.cfg.quantizer.num_codevectors
    hf_div = ref.diversity_loss / mask.sum()
    assert_close((gv - out.code_perplexity) / gv, hf_div, "diversity loss")

    # train mode: transformers reports the softmax ("prob") perplexity, which is what the
    # diversity loss uses in both code bases.
    def no_noise(logits, tau=1.0, hard=True, **_):
        soft = logits.softmax(-1)
        index = soft.argmax(-1, keepdim=True)
        return torch.zeros_like(soft).scatter_(-1, index, 1.0) - soft.detach() + soft

    monkeypatch.setattr(torch.nn.functional, "gumbel_softmax", no_noise)
    monkeypatch.setattr(
        "wav2vec2.models.quantizer._gumbel_softmax_hard", lambda lg, t, g: no_noise(lg)
    )
    hf.train()
    ours.train()
    ref, out = run_both()
    assert_close(out.prob_perplexity, ref.codevector_perplexity, "prob perplexity")
    diversity = pretraining_loss(out, ours.cfg.pretraining).diversity
    assert_close(diversity * mask.sum(), ref.diversity_loss, "diversity loss (train)")


@pytest.mark.parametrize("name", sorted(CONFIGS))
@torch.no_grad()
def test_round_trips_are_exact(name, tmp_path):
    """HF -> ours -> HF gives identical tensors, and ours -> HF loads in transformers with
    identical outputs."""
    hf = make_ctc(name)
    save_with_processor(hf, tmp_path / "hf")
    ours = load_model(str(tmp_path / "hf"))
    save_model_dir(ours, tmp_path / "ours")
    ckpt = read_checkpoint(tmp_path / "ours")
    write_hf_dir(ckpt.state_dict, ckpt.config, ckpt.vocab, tmp_path / "back")
    again, info = transformers.Wav2Vec2ForCTC.from_pretrained(
        tmp_path / "back", output_loading_info=True
    )
    assert not any(info.values()), info
    original = hf.state_dict()
    for key, value in again.state_dict().items():
        assert torch.equal(value, original[key]), key
    x, lengths = padded_batch()
    assert torch.equal(again.eval()(x).logits, hf(x).logits)
    # ours -> HF -> ours: same config, same tensors
    back = read_checkpoint(tmp_path / "back")
    assert back.config == ckpt.config
    assert back.vocab == ckpt.vocab
    for key, value in ckpt.state_dict.items():
        assert torch.equal(back.state_dict[key], value), key

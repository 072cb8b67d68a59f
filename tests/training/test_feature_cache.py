"""The frozen feature encoder's output kept across fine-tuning epochs: exact, bounded, and off
where the audio changes from epoch to epoch."""

from __future__ import annotations

import logging
import shutil

import pytest
import torch

from training_support import TINY_MODEL, finetune_argv, settings_file
from wav2vec2.cli import main
from wav2vec2.config import SMALL
from wav2vec2.errors import Wav2Vec2Error
from wav2vec2.loading import load_model
from wav2vec2.models.wav2vec2 import Wav2Vec2Model
from wav2vec2.training.config import RunConfig, TrainConfig, apply_overrides
from wav2vec2.training.feature_cache import FeatureCache, for_run, off_reason
from wav2vec2.training.metrics import read_log

# 32 utterances of 0.8-2 s at max_tokens 200000: 5 batches an epoch (and 2 of validation),
# so 10 updates are 2 epochs. Dropout, SpecAugment and the frozen phase stay on: the cache
# must leave every random draw where it was.
FT = {
    "log_interval": 1,
    "valid_interval": 5,
    "save_interval": 3,
    "keep_last": 5,
    "freeze_updates": 3,
    "data.max_tokens": 200000,
    "data.num_workers": 0,
    "optim.lr": 0.003,
    "optim.update_freq": 1,
    "model.masking.time_prob": 0.2,
    "model.masking.channel_prob": 0.1,
}
UPDATES = 10


def _records(run_dir) -> list[dict]:
    """Every logged training and validation record, without the wall-clock ones."""
    timing = {"audio_seconds_per_second", "time"}
    return [
        {k: v for k, v in r.items() if k not in timing}
        for r in read_log(run_dir / "log.jsonl")
        if r["split"] in ("train", "valid")
    ]


def _finetune(corpus, init, out, tmp_path, updates, capsys, **settings) -> str:
    config = settings_file(tmp_path, False, **FT, **settings)
    assert main(finetune_argv(corpus, init, out, updates, config)) == 0
    return capsys.readouterr().out


def test_cached_training_is_bit_identical_and_resumes(tone_corpus, tiny_pretrained, tmp_path,
                                                      capsys):  # fmt: skip
    plain, cached, resumed = tmp_path / "plain", tmp_path / "cached", tmp_path / "resumed"
    out = _finetune(tone_corpus, tiny_pretrained, plain, tmp_path, UPDATES, capsys,
                    feature_cache_mib=0)  # fmt: skip
    assert "feature cache" not in out
    out = _finetune(tone_corpus, tiny_pretrained, cached, tmp_path, UPDATES, capsys)
    # Epoch 1 and the first validation compute their 5 + 2 batches; epoch 2 and the second
    # validation reuse them all.
    (summary,) = [line for line in out.splitlines() if line.startswith("feature cache:")]
    assert summary.startswith("feature cache: 7 of 14 batches reused, 7 kept"), summary
    # The cached run as if stopped after update 6, inside epoch 2, then resumed with another
    # budget (allowed: it changes no result) and so an empty cache.
    shutil.copytree(cached, resumed)
    for name in ("update_00000009", "update_00000010", "best"):
        shutil.rmtree(resumed / "checkpoints" / name)
    out = _finetune(tone_corpus, tiny_pretrained, resumed, tmp_path, UPDATES, capsys,
                    feature_cache_mib=64)  # fmt: skip
    assert "(update 6)" in out  # then 4 batches of epoch 2 and a validation: all new to it
    assert "feature cache: 0 of 6 batches reused, 6 kept (0.3 of 64 MiB)" in out

    reference = _records(plain)
    assert len([r for r in reference if r["split"] == "train"]) == UPDATES
    assert _records(cached) == reference  # every loss, gradient norm and WER, bit for bit
    assert _records(resumed) == reference
    final = f"checkpoints/update_{UPDATES:08d}"
    want = load_model(plain / final).state_dict()
    for run in (cached, resumed):
        got = load_model(run / final).state_dict()
        assert want.keys() == got.keys()
        for key in want:
            assert torch.equal(want[key], got[key]), f"{run.name}: {key}"


def _run(**train) -> RunConfig:
    model = SMALL.with_overrides(**{"quantizer": None, "pretraining": None, "vocab_size": 8,
                                    "feature_encoder.grad_scale": 0.0})  # fmt: skip
    return apply_overrides(RunConfig("finetune", model, TrainConfig()), train)


def test_cache_only_where_reusing_is_exact_and_useful():
    assert off_reason(_run()) is None and isinstance(for_run(_run()), FeatureCache)
    assert for_run(_run()).budget == 1024 * 2**20  # the default
    assert "0" in off_reason(_run(feature_cache_mib=0))
    assert "speed perturbation" in off_reason(_run(**{"data.speed_perturb": [0.9, 1.0, 1.1]}))
    assert off_reason(_run(**{"data.speed_perturb": [1.0]})) is None  # changes nothing
    assert "trains" in off_reason(_run(**{"model.feature_encoder.grad_scale": 0.1}))
    pretrain = RunConfig("pretrain", SMALL, TrainConfig())
    assert "crops" in off_reason(pretrain) and for_run(pretrain) is None
    with pytest.raises(Wav2Vec2Error, match="feature_cache_mib"):
        _run(feature_cache_mib=-1)


def _frozen_model(**overrides) -> Wav2Vec2Model:
    """The tiny model (a 32-channel group-norm encoder), frozen, with a CTC head."""
    torch.manual_seed(0)
    tiny = {k.removeprefix("model."): v for k, v in TINY_MODEL.items()}
    cfg = SMALL.with_overrides(**{**tiny, "quantizer": None, "pretraining": None,
                                  "vocab_size": 8, "feature_encoder.grad_scale": 0.0,
                                  **overrides})  # fmt: skip
    return Wav2Vec2Model(cfg)


def test_hits_return_the_encoders_output_and_budget_is_respected(caplog):
    model = _frozen_model()
    encoder = model.feature_encoder
    gen = torch.Generator().manual_seed(0)
    # Each batch's output: 16 rows x 32 channels x 99 frames x 4 bytes = 198 KiB; the budget
    # of 1 MiB holds 5 of the 8.
    batches = [torch.randn(16, 32000, generator=gen) for _ in range(8)]
    lengths = torch.arange(32000, 16000, -1000)
    cache = FeatureCache(1)
    with caplog.at_level(logging.WARNING, logger="wav2vec2"):
        for _ in range(3):  # three epochs
            for wave in batches:
                got = cache.latents(encoder, wave, lengths)
                assert torch.equal(got, encoder(wave, lengths))
    assert cache.bytes <= cache.budget and cache.bytes == 5 * 16 * 32 * 99 * 4
    assert (cache.hits, cache.misses, cache.left_out) == (10, 14, 9)
    assert len([r for r in caplog.records if "feature cache full" in r.message]) == 1
    # The key is the content: a changed sample or other lengths miss.
    changed = batches[0].clone()
    changed[1, 5] += 1e-3
    before = cache.hits
    cache.latents(encoder, changed, lengths)
    cache.latents(encoder, batches[0], lengths - 1)
    assert cache.hits == before
    # The model takes the kept output in place of running its encoder.
    model.eval()
    with torch.no_grad():
        want = model.ctc(batches[0], lengths).logits
        kept = cache.latents(encoder, batches[0], lengths)
        got = model.ctc(batches[0], lengths, latents=kept).logits
    assert torch.equal(got, want)


def test_a_training_encoder_is_refused():
    model = _frozen_model(**{"feature_encoder.grad_scale": 0.1})
    with pytest.raises(ValueError, match="frozen"):
        FeatureCache(1).latents(model.feature_encoder, torch.randn(1, 800), torch.tensor([800]))

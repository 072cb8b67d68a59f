"""Schedules, training config overrides and checkpoint state, without data."""

import json
import math
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from wav2vec2 import SMALL, Wav2Vec2Model
from wav2vec2.checkpoint import training_state as ckpt
from wav2vec2.data.sampler import BucketBatchSampler
from wav2vec2.errors import Wav2Vec2Error
from wav2vec2.losses import pretraining_loss
from wav2vec2.training.config import (
    RunConfig,
    ScheduleConfig,
    apply_overrides,
    parse_set,
)
from wav2vec2.training.recipes import PRETRAIN_RECIPES
from wav2vec2.training.schedule import learning_rate


def test_polynomial_warmup_then_linear_decay():
    cfg = ScheduleConfig(kind="polynomial", warmup_updates=100)
    assert learning_rate(cfg, 1.0, 0, 1000) == 0.0
    assert learning_rate(cfg, 1.0, 50, 1000) == pytest.approx(0.5)
    assert learning_rate(cfg, 1.0, 100, 1000) == pytest.approx(1.0)
    assert learning_rate(cfg, 1.0, 550, 1000) == pytest.approx(0.5)
    assert learning_rate(cfg, 1.0, 1000, 1000) == 0.0


def test_tri_stage_10_40_50():
    cfg = ScheduleConfig(kind="tri_stage")
    total, peak = 1000, 2.0
    assert learning_rate(cfg, peak, 0, total) == pytest.approx(0.02)  # init_lr_scale 0.01
    assert learning_rate(cfg, peak, 50, total) == pytest.approx(0.02 + (2.0 - 0.02) / 2)
    assert learning_rate(cfg, peak, 100, total) == pytest.approx(peak)  # hold starts
    assert learning_rate(cfg, peak, 499, total) == pytest.approx(peak)
    assert learning_rate(cfg, peak, 750, total) == pytest.approx(peak * math.sqrt(0.05))
    assert learning_rate(cfg, peak, 1000, total) == pytest.approx(peak * 0.05)


def test_overrides_route_to_model_or_training():
    run = RunConfig("pretrain", SMALL, PRETRAIN_RECIPES["small"])
    run = apply_overrides(
        run, parse_set(["model.transformer.layers=2", "optim.lr=0.01", "max_updates=7"])
    )
    assert run.model.transformer.layers == 2
    assert run.train.optim.lr == 0.01 and run.train.max_updates == 7
    with pytest.raises(Wav2Vec2Error, match="unknown setting"):
        apply_overrides(run, {"optim.nope": 1})
    with pytest.raises(Wav2Vec2Error, match="key=value"):
        parse_set(["novalue"])
    assert RunConfig.from_dict(json.loads(json.dumps(run.to_dict()))) == run


def test_speed_perturb_setting_parses_and_is_checked():
    run = RunConfig("finetune", SMALL, PRETRAIN_RECIPES["small"])
    run = apply_overrides(run, parse_set(["data.speed_perturb=[0.9,1.0,1.1]"]))
    assert run.train.data.speed_perturb == (0.9, 1.0, 1.1)
    assert RunConfig.from_dict(json.loads(json.dumps(run.to_dict()))) == run
    with pytest.raises(Wav2Vec2Error, match="speed_perturb"):
        apply_overrides(run, {"data.speed_perturb": [0.1]})


def _sampler() -> BucketBatchSampler:
    return BucketBatchSampler([16000] * 8, max_tokens=32000, max_sample_size=None, seed=0)


def _save(tmp_path, model, opt, update: int) -> Path:
    state = ckpt.TrainerState(update, 0, 0, None, [], {})
    return ckpt.save_checkpoint(
        tmp_path, model, opt, None, _sampler(), state, vocab=None, run_config={}
    )


def test_checkpoint_round_trip_restores_model_optimizer_sampler_and_rng(tmp_path):
    torch.manual_seed(0)
    model = Wav2Vec2Model(SMALL)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.98))
    out = model.pretrain(torch.randn(2, 8000), generator=torch.Generator().manual_seed(0))
    pretraining_loss(out, SMALL.pretraining).total.backward()
    opt.step()
    random.seed(3)
    np.random.seed(4)
    sampler = _sampler()
    sampler.set_epoch(1)
    sampler.advance(3)
    state = ckpt.TrainerState(5, 1, 0, 1.5, [{"loss": 2.0}], {"loss": 1.5})
    path = ckpt.save_checkpoint(
        tmp_path, model, opt, None, sampler, state, vocab=None, run_config={"task": "pretrain"}
    )
    expected = (torch.rand(3), random.random(), np.random.rand())
    assert path.name == "update_00000005" and not list((tmp_path / "checkpoints").glob(".tmp*"))

    model2 = Wav2Vec2Model(SMALL)
    opt2 = torch.optim.AdamW(model2.parameters(), lr=1e-3, betas=(0.9, 0.98))
    sampler2 = _sampler()
    assert ckpt.load_checkpoint(path, model2, opt2, None, sampler2) == state
    assert sampler2.state_dict() == {"epoch": 1, "position": 3}
    for k, v in model.state_dict().items():
        assert torch.equal(model2.state_dict()[k], v)
    want, got = opt.state_dict()["state"], opt2.state_dict()["state"]
    assert want.keys() == got.keys()
    for i in want:
        for name in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(want[i][name], got[i][name])
    assert torch.equal(torch.rand(3), expected[0])
    assert random.random() == expected[1] and np.random.rand() == expected[2]
    # the checkpoint is also a model directory
    from wav2vec2.loading import load_model

    again = load_model(path)
    for k, v in model.state_dict().items():
        assert torch.equal(again.state_dict()[k], v)


def test_prune_keeps_last_and_best(tmp_path):
    model = Wav2Vec2Model(SMALL)
    opt = torch.optim.AdamW(model.parameters())
    for update in (1, 2, 3):
        path = _save(tmp_path, model, opt, update)
        if update == 1:
            ckpt.mark_best(tmp_path, path)
    ckpt.prune(tmp_path, keep_last=2)
    assert [p.name for p in ckpt.list_checkpoints(tmp_path)] == [
        "update_00000002",
        "update_00000003",
    ]
    assert (tmp_path / "checkpoints" / "best" / "model.safetensors").is_file()


def test_corrupt_trainer_state_is_a_clear_error(tmp_path):
    model = Wav2Vec2Model(SMALL)
    opt = torch.optim.AdamW(model.parameters())
    path = _save(tmp_path, model, opt, 1)
    (path / "trainer.safetensors").write_bytes(b"garbage")
    with pytest.raises(Wav2Vec2Error, match="cannot read training state"):
        ckpt.load_checkpoint(path, model, opt, None, _sampler())

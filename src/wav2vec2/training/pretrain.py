"""Pretraining: a run directory, its data, the model and the pretraining task."""

from __future__ import annotations

from pathlib import Path

from wav2vec2.models.wav2vec2 import Wav2Vec2Model
from wav2vec2.training import runner
from wav2vec2.training.config import RunConfig
from wav2vec2.training.tasks import PretrainTask
from wav2vec2.training.trainer import FitResult


def run_pretraining(data: Path, out: Path, cfg: RunConfig) -> FitResult:
    """Train (or resume) ``cfg`` on ``data``'s manifests into ``out``; rank 0 reports."""
    d = cfg.train.data
    with runner.session(cfg) as (env, device):
        runner.prepare_run_dir(out, cfg, env)
        train = runner.data_source(data / f"{d.train_subset}.tsv", cfg, env, train=True)
        valid = runner.data_source(data / f"{d.valid_subset}.tsv", cfg, env, train=False)
        result = runner.train_run(
            out, cfg, PretrainTask(), lambda: Wav2Vec2Model(cfg.model), train, valid, env, device
        )
        if env.is_main:
            runner.report(out, result)
    return result

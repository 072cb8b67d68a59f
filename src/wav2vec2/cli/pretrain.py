"""``wav2vec2 pretrain --data DIR --preset P --out RUN_DIR [--max-updates N] [--set k=v ...]
[--config FILE]``: self-supervised pretraining (also under ``torchrun -m wav2vec2``)."""

from __future__ import annotations

from pathlib import Path

from wav2vec2.config import PRESETS, preset
from wav2vec2.models.wav2vec2 import Wav2Vec2Model
from wav2vec2.training import runner
from wav2vec2.training.config import (
    PRETRAIN_RECIPES,
    RunConfig,
    apply_overrides,
    parse_set,
    read_config_file,
)
from wav2vec2.training.plots import plot_run
from wav2vec2.training.tasks import PretrainTask


def register(sub) -> None:
    p = sub.add_parser("pretrain", help="self-supervised pretraining on unlabeled audio")
    p.add_argument("--data", required=True, help="directory with train.tsv (and valid.tsv)")
    p.add_argument("--preset", choices=sorted(PRESETS), default="small")
    p.add_argument("--out", required=True, help="run directory (re-run to resume)")
    p.add_argument("--max-updates", type=int, default=None)
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE",
        help="override a setting: model.* for the model (model.transformer.layers=6), "
        "anything else for training (optim.lr=1e-4, data.max_tokens=400000)",
    )  # fmt: skip
    p.add_argument("--config", help="JSON file of settings (nested or dotted keys)")
    p.set_defaults(func=run)


def build_run_config(args) -> RunConfig:
    run = RunConfig("pretrain", preset(args.preset), PRETRAIN_RECIPES[args.preset])
    overrides = read_config_file(args.config) if args.config else {}
    overrides.update(parse_set(args.set))
    if args.max_updates is not None:
        overrides["max_updates"] = args.max_updates
    return apply_overrides(run, overrides)


def run(args) -> int:
    cfg = build_run_config(args)
    data, out = Path(args.data), Path(args.out)
    env, device = runner.start(cfg)
    try:
        runner.prepare_run_dir(out, cfg, env)
        train = runner.data_source(
            data / f"{cfg.train.data.train_subset}.tsv", cfg, env, train=True
        )
        valid = runner.data_source(
            data / f"{cfg.train.data.valid_subset}.tsv", cfg, env, train=False
        )
        result = runner.train_run(
            out, cfg, PretrainTask(), lambda: Wav2Vec2Model(cfg.model), train, valid, env, device
        )
        if env.is_main:
            plots = plot_run(out)
            print(f"done: update {result.update}; last checkpoint {result.last_checkpoint}")
            if result.best_checkpoint:
                print(f"best checkpoint: {result.best_checkpoint}")
            print(f"plots: {out / 'plots'} ({len(plots)} files); log: {out / 'log.jsonl'}")
    finally:
        runner.finish(env)
    return 0

"""``wav2vec2 pretrain --data DIR --preset P --out RUN_DIR [--max-updates N] [--set k=v ...]
[--config FILE]``: self-supervised pretraining (also under ``torchrun -m wav2vec2``)."""

from __future__ import annotations

from pathlib import Path

from wav2vec2.config import PRESETS, preset
from wav2vec2.training.config import (
    PRETRAIN_RECIPES,
    RunConfig,
    apply_overrides,
    parse_set,
    read_config_file,
)
from wav2vec2.training.pretrain import run_pretraining


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
    run_pretraining(Path(args.data), Path(args.out), build_run_config(args))
    return 0

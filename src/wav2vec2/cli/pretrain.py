"""``wav2vec2 pretrain --data DIR --preset P --out RUN_DIR [--max-updates N] [--set k=v ...]
[--config FILE]``: self-supervised pretraining (also under ``torchrun -m wav2vec2``)."""

from __future__ import annotations

from pathlib import Path

from wav2vec2.cli.settings_args import add_settings_args, settings_overrides
from wav2vec2.config import PRESETS
from wav2vec2.training.pretrain import run_pretraining
from wav2vec2.training.recipes import pretrain_run_config


def register(sub) -> None:
    p = sub.add_parser("pretrain", help="self-supervised pretraining on unlabeled audio")
    p.add_argument("--data", required=True, help="directory with train.tsv (and valid.tsv)")
    p.add_argument("--preset", choices=sorted(PRESETS), default="small")
    p.add_argument("--out", required=True, help="run directory (re-run to resume)")
    add_settings_args(p)
    p.set_defaults(func=run)


def run(args) -> int:
    cfg = pretrain_run_config(args.preset, settings_overrides(args))
    run_pretraining(Path(args.data), Path(args.out), cfg)
    return 0

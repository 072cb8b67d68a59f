"""``wav2vec2 finetune --data DIR --init PRETRAINED --out RUN_DIR [--labels ltr]
[--preset 10m|1h|10h|100h|960h] [--max-updates N] [--set key=value ...] [--config FILE]``:
CTC fine-tuning."""

from __future__ import annotations

from pathlib import Path

from wav2vec2.cli.settings_args import add_settings_args, settings_overrides
from wav2vec2.training.finetune import run_finetuning
from wav2vec2.training.recipes import FINETUNE_RECIPES, finetune_run_config


def register(sub) -> None:
    p = sub.add_parser("finetune", help="fine-tune a pretrained model for CTC recognition")
    p.add_argument("--data", required=True, help="manifests, labels and dict.<labels>.txt")
    p.add_argument("--init", required=True, help="pretrained model: ours, HuggingFace, fairseq")
    p.add_argument("--out", required=True, help="run directory (re-run to resume)")
    p.add_argument(
        "--labels", help="label file extension, i.e. data.labels (default: the recipe's, ltr)"
    )
    p.add_argument(
        "--preset", choices=sorted(FINETUNE_RECIPES), default="10m", help="labeled data size"
    )
    add_settings_args(p)
    p.set_defaults(func=run)


def run(args) -> int:
    data, out = Path(args.data), Path(args.out)
    from wav2vec2.loading import read_checkpoint

    init = read_checkpoint(args.init)
    # --labels is the data.labels setting; --config and --set may set it too (and win).
    labels = {"data.labels": args.labels} if args.labels else {}
    cfg = finetune_run_config(init.config, args.preset, data, labels | settings_overrides(args))
    run_finetuning(data, init, out, cfg)
    return 0

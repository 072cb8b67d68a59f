"""``wav2vec2 finetune --data DIR --init PRETRAINED --out RUN_DIR [--labels ltr]
[--preset 10m|1h|10h|100h|960h] [--set key=value ...]``: CTC fine-tuning."""

from __future__ import annotations

from pathlib import Path

from wav2vec2.training.config import RunConfig, apply_overrides, parse_set, read_config_file
from wav2vec2.training.finetune import default_subsets, finetune_run_config, run_finetuning
from wav2vec2.training.finetune_recipes import RECIPES
from wav2vec2.vocab import Vocabulary


def register(sub) -> None:
    p = sub.add_parser("finetune", help="fine-tune a pretrained model for CTC recognition")
    p.add_argument("--data", required=True, help="manifests, labels and dict.<labels>.txt")
    p.add_argument("--init", required=True, help="pretrained model: ours, HuggingFace, fairseq")
    p.add_argument("--out", required=True, help="run directory (re-run to resume)")
    p.add_argument("--labels", default="ltr", help="label file extension (default: ltr)")
    p.add_argument("--preset", choices=sorted(RECIPES), default="10m", help="labeled data size")
    p.add_argument("--max-updates", type=int, default=None)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--config", help="JSON file of settings (nested or dotted keys)")
    p.set_defaults(func=run)


def run(args) -> int:
    data, out = Path(args.data), Path(args.out)
    vocab = Vocabulary.from_fairseq_dict(data / f"dict.{args.labels}.txt")
    from wav2vec2.loading import read_checkpoint

    init = read_checkpoint(args.init)
    cfg: RunConfig = finetune_run_config(init.config, RECIPES[args.preset], len(vocab))
    overrides = {**default_subsets(data, args.preset), "data.labels": args.labels}
    overrides.update(read_config_file(args.config) if args.config else {})
    overrides.update(parse_set(args.set))
    if args.max_updates is not None:
        overrides["max_updates"] = args.max_updates
    cfg = apply_overrides(cfg, overrides)
    run_finetuning(data, init, out, cfg, vocab, args.labels)
    return 0

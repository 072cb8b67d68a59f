"""``wav2vec2 finetune --data DIR --init PRETRAINED --out RUN_DIR [--labels ltr]
[--preset 10m|1h|10h|100h|960h] [--set key=value ...]``: CTC fine-tuning."""

from __future__ import annotations

from pathlib import Path

from wav2vec2.errors import Wav2Vec2Error
from wav2vec2.training import runner
from wav2vec2.training.config import RunConfig, apply_overrides, parse_set, read_config_file
from wav2vec2.training.finetune import build_finetune_model, finetune_run_config
from wav2vec2.training.finetune_recipes import RECIPES
from wav2vec2.training.plots import plot_run
from wav2vec2.training.tasks import CTCTask
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


def _default_subsets(data: Path, preset: str) -> dict[str, str]:
    """train_<preset>.tsv (the corpus's nested subsets) or train.tsv; valid.tsv or dev.tsv."""
    train = f"train_{preset}" if (data / f"train_{preset}.tsv").is_file() else "train"
    valid = "valid" if (data / "valid.tsv").is_file() else "dev"
    return {"data.train_subset": train, "data.valid_subset": valid}


def run(args) -> int:
    data, out = Path(args.data), Path(args.out)
    vocab = Vocabulary.from_fairseq_dict(data / f"dict.{args.labels}.txt")
    from wav2vec2.interop.loading import read_checkpoint

    init = read_checkpoint(args.init)
    cfg: RunConfig = finetune_run_config(init.config, RECIPES[args.preset], len(vocab))
    overrides = {**_default_subsets(data, args.preset), "data.labels": args.labels}
    overrides.update(read_config_file(args.config) if args.config else {})
    overrides.update(parse_set(args.set))
    if args.max_updates is not None:
        overrides["max_updates"] = args.max_updates
    cfg = apply_overrides(cfg, overrides)
    if cfg.model.vocab_size != len(vocab):
        raise Wav2Vec2Error(f"model.vocab_size must be {len(vocab)} for this dictionary")
    d = cfg.train.data
    env, device = runner.start(cfg)
    try:
        runner.prepare_run_dir(out, cfg, env)
        train = runner.data_source(
            data / f"{d.train_subset}.tsv", cfg, env, train=True,
            labels=data / f"{d.train_subset}.{args.labels}", vocab=vocab,
        )  # fmt: skip
        valid = runner.data_source(
            data / f"{d.valid_subset}.tsv", cfg, env, train=False,
            labels=data / f"{d.valid_subset}.{args.labels}", vocab=vocab,
        )  # fmt: skip
        task = CTCTask(vocab, cfg.train.freeze_updates, warn_after=cfg.train.valid_interval)
        result = runner.train_run(
            out, cfg, task, lambda: build_finetune_model(cfg.model, init, vocab),
            train, valid, env, device,
        )  # fmt: skip
        if env.is_main:
            plots = plot_run(out)
            best = result.best_checkpoint or result.last_checkpoint
            print(f"done: update {result.update}; model: {best}")
            print(f"plots: {out / 'plots'} ({len(plots)} files); log: {out / 'log.jsonl'}")
    finally:
        runner.finish(env)
    return 0

"""``wav2vec2 evaluate MODEL --data DIR --split test [--out DIR] [--lm DIR]``: WER and CER."""

from __future__ import annotations

from pathlib import Path

from wav2vec2.cli.decoding_args import (
    add_decoding_args,
    add_device_args,
    beam_config,
    chunk_config,
    model_args,
)
from wav2vec2.evaluation import evaluate
from wav2vec2.inference import Wav2Vec2Inference


def register(sub) -> None:
    p = sub.add_parser("evaluate", help="WER/CER of a CTC model on a labeled split")
    p.add_argument("model")
    p.add_argument("--data", required=True, help="directory with SPLIT.tsv and SPLIT.wrd/.ltr")
    p.add_argument("--split", default="test")
    p.add_argument("--out", help="report directory (default: MODEL/eval, or ./eval)")
    add_device_args(p)
    add_decoding_args(p)
    p.set_defaults(func=run)


def run(args) -> int:
    model_dir = Path(args.model)
    out = (
        Path(args.out) if args.out else (model_dir / "eval" if model_dir.is_dir() else Path("eval"))
    )
    engine = Wav2Vec2Inference.from_pretrained(
        args.model, args.device, lm=args.lm, beam=beam_config(args), chunking=chunk_config(args),
        **model_args(args), decode_workers=args.decode_workers,
    )  # fmt: skip
    result = evaluate(engine, args.data, args.split, out)
    skipped = f", {result.skipped} skipped (listed in the summary)" if result.skipped else ""
    print(f"{args.split}: WER {100 * result.wer:.2f}%  CER {100 * result.cer:.2f}%  "
          f"({result.utterances} utterances{skipped})")  # fmt: skip
    print(f"per utterance: {result.utterances_path}")
    print(f"summary: {result.summary_path}")
    return 0

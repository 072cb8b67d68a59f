"""``wav2vec2 features MODEL AUDIO --output OUT.npy [--layer N]``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from wav2vec2.atomic import check_file_dest, write_npy_atomic
from wav2vec2.cli.decoding_args import add_device_args, precision
from wav2vec2.inference import Wav2Vec2Inference


def register(sub) -> None:
    p = sub.add_parser("features", help="extract Transformer features as a .npy array")
    p.add_argument("model")
    p.add_argument("audio", help="any format libsndfile reads")
    p.add_argument("--output", "-o", required=True, help="output .npy (frames, dim) float32")
    p.add_argument(
        "--layer", type=int, default=None,
        help="hidden state N (0 = input to the first block); default: the final output",
    )  # fmt: skip
    add_device_args(p)
    p.set_defaults(func=run)


def run(args) -> int:
    out = Path(args.output)
    check_file_dest(out)  # before the model loads and runs
    engine = Wav2Vec2Inference.from_pretrained(args.model, args.device, precision=precision(args))
    feats = engine.features(args.audio, layer=args.layer)
    write_npy_atomic(out, feats.astype(np.float32))
    print(f"{out}: {feats.shape[0]} frames x {feats.shape[1]} dims")
    return 0

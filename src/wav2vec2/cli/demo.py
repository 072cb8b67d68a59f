"""``wav2vec2 demo [--quick]``: the README's main job on built-in data."""

from __future__ import annotations

import os

from wav2vec2.demo import run_demo


def register(sub) -> None:
    p = sub.add_parser(
        "demo", help="corpus -> pretrain -> fine-tune -> evaluate -> transcribe, on built-in data"
    )
    p.add_argument("--out", default="demo", help="output directory (default: ./demo)")
    p.add_argument("--quick", action="store_true", help="a 3-minute version")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    p.set_defaults(func=run)


def run(args) -> int:
    run_demo(args.out, quick=args.quick, workers=args.workers)
    return 0

"""``wav2vec2 demo``: the README's main job on built-in data."""

from __future__ import annotations

from wav2vec2.demo import run_demo


def register(sub) -> None:
    p = sub.add_parser("demo", help="run the main job end to end on built-in data")
    p.add_argument("--out", default="demo", help="output directory (default: ./demo)")
    p.add_argument("--steps", type=int, default=20)
    p.set_defaults(func=run)


def run(args) -> int:
    result = run_demo(args.out, steps=args.steps)
    print(f"pretraining loss per masked step: {result['first_loss']:.3f} -> "
          f"{result['last_loss']:.3f}")  # fmt: skip
    return 0

"""``wav2vec2 plot RUN_DIR``: PNG plots of a training run's curves."""

from __future__ import annotations

from wav2vec2.training.plots import plot_run


def register(sub) -> None:
    p = sub.add_parser("plot", help="write PNG plots of a training run's curves")
    p.add_argument("run_dir")
    p.set_defaults(func=run)


def run(args) -> int:
    for path in plot_run(args.run_dir):
        print(path)
    return 0

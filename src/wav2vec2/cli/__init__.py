"""The ``wav2vec2`` console command: a thin layer over the library.

Each verb lives in its own module under :mod:`wav2vec2.cli` and exposes ``register(sub)``,
which adds its parser and sets ``func``. No logic lives only here.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from wav2vec2.allocator import reexec_with_tcmalloc
from wav2vec2.errors import Wav2Vec2Error

# Verb modules, in the order `wav2vec2 --help` lists them.
VERBS = (
    "info",
    "features",
    "transcribe",
    "align",
    "convert",
    "export",
    "corpus",
    "manifest",
    "pretrain",
    "finetune",
    "evaluate",
    "lm",
    "plot",
    "demo",
    "serve",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wav2vec2", description="wav2vec 2.0: pretraining, fine-tuning, inference, interop."
    )
    sub = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for verb in VERBS:
        importlib.import_module(f"wav2vec2.cli.{verb}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    if argv is None:  # a real command line, not a call from Python (tests)
        reexec_with_tcmalloc()
    args = build_parser().parse_args(argv)
    try:
        result = args.func(args)
    except Wav2Vec2Error as exc:
        print(f"wav2vec2 {args.verb}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the system refused (disk full, permissions): still one line
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"wav2vec2 {args.verb}: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"wav2vec2 {args.verb}: interrupted", file=sys.stderr)
        return 130
    return int(result or 0)

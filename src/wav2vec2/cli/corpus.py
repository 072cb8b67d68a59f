"""``wav2vec2 corpus``: make the built-in speech corpus, or import a real one."""

from __future__ import annotations

import argparse
import sys

from wav2vec2.corpus.sources import SOURCE_NAMES
from wav2vec2.errors import Wav2Vec2Error


def _make(args: argparse.Namespace) -> int:
    from wav2vec2.corpus.augment import DEFAULT_AUGMENT, AugmentConfig
    from wav2vec2.corpus.make import make_corpus
    from wav2vec2.corpus.plan import CorpusConfig

    base = DEFAULT_AUGMENT if args.augment else AugmentConfig()
    try:
        augment = AugmentConfig(
            noise_prob=base.noise_prob if args.noise_prob is None else args.noise_prob,
            snr_db=tuple(args.snr) if args.snr else base.snr_db,
            speed_prob=base.speed_prob if args.speed_prob is None else args.speed_prob,
            reverb_prob=base.reverb_prob if args.reverb_prob is None else args.reverb_prob,
        )
        config = CorpusConfig(
            hours=args.hours,
            seed=args.seed,
            augment=augment,
            sources=tuple(args.sources),
            vocabulary=args.vocabulary,
        )
    except ValueError as exc:
        raise Wav2Vec2Error(f"bad corpus settings: {exc}") from exc
    make_corpus(args.dest, config, workers=args.workers, install=not args.no_install)
    print(f"{args.dest}/summary.md")
    return 0


def _librispeech(args: argparse.Namespace) -> int:
    from wav2vec2.corpus.importers import import_librispeech

    report = import_librispeech(args.path, args.dest, name=args.name, replace=args.replace)
    print(report.render(), file=sys.stderr)
    return 0


def _tsv(args: argparse.Namespace) -> int:
    from wav2vec2.corpus.importers import import_tsv

    report = import_tsv(
        args.tsv,
        args.dest,
        name=args.name,
        audio_root=args.audio_root,
        normalize=args.normalize,
        replace=args.replace,
    )
    print(report.render(), file=sys.stderr)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "corpus",
        help="make the built-in speech corpus, or import LibriSpeech or a TSV",
        description="Make a multi-speaker English speech corpus with offline TTS, or import a "
        "real corpus, as fairseq manifests (.tsv) and labels (.wrd/.ltr, dict.ltr.txt).",
    )
    verbs = parser.add_subparsers(dest="corpus_verb", metavar="ACTION", required=True)

    make = verbs.add_parser(
        "make",
        help="synthesize the built-in corpus",
        description="Synthesize speech with espeak-ng, flite and festival from offline text. "
        "Splits: pretrain (unlabeled), train_10m/1h/10h (nested, labeled), dev, test "
        "(held-out speakers and sentences). Resumable: re-run the same command to finish.",
    )
    make.add_argument("dest", help="output folder")
    make.add_argument("--hours", type=float, default=1.0, help="total hours of audio (default 1)")
    make.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    make.add_argument(
        "--sources",
        nargs="+",
        default=list(SOURCE_NAMES),
        metavar="NAME",
        help=f"text sources to read, from {', '.join(SOURCE_NAMES)} (default: all)",
    )
    make.add_argument(
        "--vocabulary",
        type=int,
        default=0,
        metavar="N",
        help="closed vocabulary: only sentences made of the N most frequent words "
        "(default 0: open)",
    )
    make.add_argument("--workers", type=int, default=None, help="processes (default: all CPUs)")
    make.add_argument(
        "--augment",
        action="store_true",
        help="augment training audio: noise (50%%), speed 0.9/1.1 (30%%), reverb (30%%)",
    )
    make.add_argument("--noise-prob", type=float, help="share of training audio with noise")
    make.add_argument(
        "--snr", type=float, nargs=2, metavar=("LOW", "HIGH"), help="noise SNR range in dB"
    )
    make.add_argument("--speed-prob", type=float, help="share with speed perturbation")
    make.add_argument("--reverb-prob", type=float, help="share with reverberation")
    make.add_argument(
        "--no-install", action="store_true", help="never apt-get install missing packages"
    )
    make.set_defaults(func=_make)

    libri = verbs.add_parser(
        "librispeech",
        help="import a LibriSpeech-style tree",
        description="Import speaker/chapter/*.flac with *.trans.txt. PATH is one split "
        "(e.g. dev-clean) or a folder of splits; each becomes DEST/NAME.tsv/.wrd/.ltr. Every "
        "file is decoded; bad or too-short audio is skipped and reported.",
    )
    libri.add_argument("path", help="LibriSpeech split folder, or a folder of split folders")
    libri.add_argument("dest", help="output folder for manifests and labels")
    libri.add_argument("--name", help="split name when PATH is one split (default: its name)")
    _add_replace(libri)
    libri.set_defaults(func=_librispeech)

    tsv = verbs.add_parser(
        "tsv",
        help="import an audio-path<TAB>transcript file",
        description="Import lines of 'audio/path<TAB>transcript' (relative paths are relative "
        "to the TSV's folder, or --audio-root). Every file is decoded; bad lines and bad or "
        "too-short audio are skipped and reported.",
    )
    tsv.add_argument("tsv", help="input TSV")
    tsv.add_argument("dest", help="output folder for manifests and labels")
    tsv.add_argument("--name", default="train", help="split name (default train)")
    tsv.add_argument("--audio-root", help="folder relative audio paths start from")
    tsv.add_argument(
        "--normalize",
        action="store_true",
        help="fold case and strip punctuation first (else transcripts must be A-Z, ' and space)",
    )
    _add_replace(tsv)
    tsv.set_defaults(func=_tsv)


def _add_replace(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--replace",
        action="store_true",
        help="replace a split of the same name in DEST (without it, an existing split is "
        "refused: a model may have been fine-tuned on its labels)",
    )

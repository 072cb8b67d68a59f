"""``wav2vec2 manifest AUDIO_DIR DEST``: fairseq-style train.tsv / valid.tsv for pretraining."""

from __future__ import annotations

import sys
from pathlib import Path

from tqdm import tqdm

from wav2vec2.data.manifest_builder import DEFAULT_EXTENSIONS, ManifestReport, build_manifest


def register(sub) -> None:
    p = sub.add_parser(
        "manifest",
        help="index a directory of audio into train.tsv / valid.tsv (fairseq format)",
        description="Walk AUDIO_DIR recursively and write DEST/train.tsv and DEST/valid.tsv: "
        "the root on the first line, then 'relative/path<TAB>frames'. Every file is decoded; "
        "unreadable, corrupt, empty and too-short files are skipped and listed.",
    )
    p.add_argument("audio_dir", metavar="AUDIO_DIR", help="directory to search recursively")
    p.add_argument("dest", metavar="DEST", help="output directory (created if needed)")
    p.add_argument(
        "--valid-percent",
        type=float,
        required=True,
        metavar="P",
        help="percent of files (0-100) to put in valid.tsv, drawn per file; note fairseq's "
        "script takes a fraction (its 0.01 is our 1)",
    )
    p.add_argument(
        "--ext",
        default=",".join(DEFAULT_EXTENSIONS),
        help="comma-separated extensions, case-insensitive (default: %(default)s)",
    )
    p.add_argument("--seed", type=int, default=42, help="seed of the split (default: 42)")
    p.add_argument("--jobs", type=int, default=8, help="threads reading audio (default: 8)")
    p.set_defaults(func=run)


def run(args) -> int:
    extensions = [e.strip() for e in args.ext.split(",") if e.strip()]
    if 0 < args.valid_percent < 1:
        print(
            f"note: --valid-percent {args.valid_percent:g} means {args.valid_percent:g}% "
            f"(fairseq's script would read it as {100 * args.valid_percent:g}%)",
            file=sys.stderr,
        )
    report = build_manifest(
        args.audio_dir,
        args.dest,
        valid_percent=args.valid_percent,
        extensions=extensions,
        seed=args.seed,
        jobs=args.jobs,
        progress=lambda it: tqdm(it, desc="reading audio", unit="file", disable=None),
    )
    for rel, reason in report.skipped:
        print(f"skipped {rel}: {reason}")
    print(f"root    {report.root}")
    for split, entries in (("train", report.train), ("valid", report.valid)):
        hours = ManifestReport.hours(entries)
        print(f"{split}   {len(entries)} files, {hours:.2f} h -> {Path(args.dest) / split}.tsv")
    print(f"skipped {len(report.skipped)} files (unreadable, corrupt, empty or too short)")
    return 0

"""``wav2vec2 align MODEL AUDIO TEXT [--format F]`` and ``wav2vec2 align MODEL SPLIT.tsv
--output-dir DIR [--format F]``: word and letter times of a known transcript, by CTC forced
alignment (:meth:`Wav2Vec2Inference.align`).

TEXT is the transcript, or a text file holding it. With a manifest, the transcripts are
the lines of the ``.wrd`` file beside it, and each utterance gets its own file in DIR,
written atomically (a rerun skips those that exist, so an interrupted run resumes). An
utterance that cannot be aligned is reported on one line and skipped; the exit status is
then 2. Long files run in chunks, as for ``transcribe``.
"""

from __future__ import annotations

import sys
from pathlib import Path, PurePosixPath

from wav2vec2.atomic import write_text_atomic
from wav2vec2.cli.decoding_args import (
    add_chunking_args,
    add_output_args,
    chunk_config,
    precision,
)
from wav2vec2.cli.output_dir import plan_outputs, print_summary
from wav2vec2.errors import Wav2Vec2Error
from wav2vec2.formats import ALIGN_FORMATS, extension, render_alignment
from wav2vec2.inference import Wav2Vec2Inference
from wav2vec2.inputs import Input, labeled_inputs
from wav2vec2.textfile import text_or_file


def register(sub) -> None:
    p = sub.add_parser("align", help="word and letter times of a known transcript (CTC)")
    p.add_argument("model")
    p.add_argument("audio", metavar="AUDIO", help="an audio file, or a .tsv manifest with "
                   "its .wrd transcripts beside it")  # fmt: skip
    p.add_argument("text", nargs="?", metavar="TEXT", help="the transcript, or a text file "
                   "holding it (not with a manifest)")  # fmt: skip
    p.add_argument("--format", choices=ALIGN_FORMATS, default="json",
                   help="json (default: words and letters), tsv, srt, vtt or textgrid "
                   "(Praat: a words and a chars tier)")  # fmt: skip
    add_output_args(p, "utterance", "char: tsv rows per letter")
    add_chunking_args(p)
    p.set_defaults(func=run)


def run(args) -> int:
    manifest = Path(args.audio).suffix.lower() == ".tsv"
    if manifest and args.text is not None:
        raise Wav2Vec2Error("a manifest's transcripts come from its .wrd file: give no TEXT")
    if manifest and args.output_dir is None:
        raise Wav2Vec2Error("a manifest aligns many utterances: give --output-dir DIR")
    if not manifest and args.text is None:
        raise Wav2Vec2Error("give the transcript (TEXT, or a file holding it) after AUDIO")
    if manifest:
        jobs = labeled_inputs(args.audio)
    else:
        name = PurePosixPath(Path(args.audio).name).with_suffix("")
        jobs = [(Input(Path(args.audio), name), text_or_file(args.text))]
    outputs, todo = plan_outputs(args.output_dir, jobs, lambda job: job[0], extension(args.format))
    engine = Wav2Vec2Inference.from_pretrained(
        args.model, args.device, precision=precision(args), chunking=chunk_config(args)
    )
    chars = args.timestamps == "char"
    failed = 0
    for item, text in todo:
        try:  # a bar (audio seconds, ETA) for one long file when someone watches
            result = engine.align(item.path, text, progress=not manifest and sys.stderr.isatty())
        except Wav2Vec2Error as exc:  # this utterance only; the others still come out
            print(f"wav2vec2 align: error: {exc}", file=sys.stderr)
            failed += 1
            continue
        output = render_alignment(result, args.format, chars)
        if outputs is not None:
            write_text_atomic(outputs[item.path], output)
        else:
            sys.stdout.write(output)
    if outputs is not None:
        print_summary("align", "aligned", len(jobs), len(todo), failed, args.output_dir)
    return 2 if failed else 0

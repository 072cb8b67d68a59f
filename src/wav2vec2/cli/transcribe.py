"""``wav2vec2 transcribe MODEL INPUT... [--format F] [--output-dir DIR] [--lm DIR]``: CTC
transcripts with word times, greedy or by lexicon beam search with an n-gram LM.

INPUTs are audio files, folders (searched recursively) and ``.tsv`` manifests. Long files
run in chunks (``--chunk-seconds``, ``--context-seconds``).

On stdout, plain ``txt`` output is one line per input, in input order, so that lines and
inputs always match: the text alone for one file, ``path<TAB>text`` for several (as
``grep`` names files only when it reads several). ``jsonl`` (also ``--json``) is one
object per input. A file that cannot be transcribed still gets its line (empty text, and
``error`` in JSON); the reason goes to stderr and the exit status is 2.

With ``--output-dir`` each input gets its own file in the chosen format, written
atomically; a rerun skips inputs whose file exists, so an interrupted run resumes.
"""

from __future__ import annotations

import json
import sys

from wav2vec2.atomic import write_text_atomic
from wav2vec2.cli.decoding_args import (
    add_decoding_args,
    add_output_args,
    beam_config,
    chunk_config,
    model_args,
)
from wav2vec2.cli.output_dir import plan_outputs, print_summary
from wav2vec2.errors import Wav2Vec2Error
from wav2vec2.formats import FORMATS, record, render
from wav2vec2.inference import Wav2Vec2Inference
from wav2vec2.inputs import expand_inputs

ONE_PER_FILE = ("json", "srt", "vtt", "tsv")  # whole documents: one input each on stdout


def register(sub) -> None:
    p = sub.add_parser("transcribe", help="transcribe audio files with a CTC model")
    p.add_argument("model")
    p.add_argument(
        "audio",
        nargs="+",
        metavar="INPUT",
        help="audio files (any format libsndfile reads), folders, .tsv manifests",
    )
    p.add_argument(
        "--format",
        choices=FORMATS,
        default=None,
        help="txt (default), json, jsonl, srt, vtt or tsv (word times)",
    )
    p.add_argument("--json", action="store_true", help="the same as --format jsonl")
    add_output_args(p, "input", "char: letters with times too (json, jsonl, tsv)")
    add_decoding_args(p)
    p.set_defaults(func=run)  # fmt: skip


def run(args) -> int:
    fmt = args.format or ("jsonl" if args.json else "txt")
    if args.json and args.format not in (None, "jsonl"):
        raise Wav2Vec2Error(f"--json means --format jsonl; it cannot go with --format {fmt}")
    inputs = expand_inputs(args.audio)
    if args.output_dir is None and fmt in ONE_PER_FILE and len(inputs) > 1:
        raise Wav2Vec2Error(
            f"--format {fmt} writes one document per input: give --output-dir DIR for "
            f"{len(inputs)} inputs (or use jsonl)"
        )
    outputs, todo = plan_outputs(args.output_dir, inputs, lambda i: i, fmt)
    engine = Wav2Vec2Inference.from_pretrained(
        args.model, args.device, lm=args.lm, beam=beam_config(args), chunking=chunk_config(args),
        **model_args(args), decode_workers=args.decode_workers,
    )  # fmt: skip
    chars = args.timestamps == "char"
    named = len(inputs) > 1
    failed = 0
    # a bar (audio seconds done, rate, ETA) when someone watches; never in a pipe or log
    results = engine.transcribe_iter([i.path for i in todo], progress=sys.stderr.isatty())
    for item, result in zip(todo, results, strict=True):
        if not result.ok:  # reported by the engine; the other files still come out
            print(f"wav2vec2 transcribe: error: {result.error}", file=sys.stderr)
            failed += 1
        if outputs is not None:
            if result.ok:
                write_text_atomic(outputs[item.path], render(result, fmt, chars))
        elif fmt == "txt":
            print(f"{result.source}\t{result.text}" if named else result.text, flush=True)
        elif fmt == "jsonl":
            print(json.dumps(record(result, chars), ensure_ascii=False), flush=True)
        else:
            sys.stdout.write(render(result, fmt, chars))
    if outputs is not None:
        print_summary("transcribe", "transcribed", len(inputs), len(todo), failed, args.output_dir)
    return 2 if failed else 0

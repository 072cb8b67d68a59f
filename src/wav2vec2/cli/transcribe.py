"""``wav2vec2 transcribe MODEL AUDIO... [--json] [--lm DIR]``: CTC transcripts, greedy or by
lexicon beam search with an n-gram LM.

Plain output is one line per input, in input order, so that lines and inputs always match:
the text alone for one file, ``path<TAB>text`` for several (as ``grep`` names files only
when it reads several). A file that cannot be transcribed still gets its line, with empty
text; the reason goes to stderr and the exit status is 2."""

from __future__ import annotations

import json
import sys

from wav2vec2.cli.decoding_args import add_decoding_args, beam_config
from wav2vec2.inference import Wav2Vec2Inference


def register(sub) -> None:
    p = sub.add_parser("transcribe", help="transcribe audio files with a CTC model")
    p.add_argument("model")
    p.add_argument("audio", nargs="+", help="audio files (any format libsndfile reads)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--device", default="cpu")
    add_decoding_args(p)
    p.set_defaults(func=run)


def run(args) -> int:
    engine = Wav2Vec2Inference.from_pretrained(
        args.model, args.device, lm=args.lm, beam=beam_config(args)
    )
    failed = 0
    named = len(args.audio) > 1
    for result in engine.transcribe(args.audio):
        if not result.ok:  # reported by the engine; the other files still come out
            print(f"wav2vec2 transcribe: error: {result.error}", file=sys.stderr)
            failed += 1
        if args.json:
            record = {
                "path": result.source,
                "text": result.text,
                "duration": round(result.duration, 3),
            }
            if not result.ok:
                record["error"] = result.error
            print(json.dumps(record, ensure_ascii=False))
        else:
            print(f"{result.source}\t{result.text}" if named else result.text)
    return 2 if failed else 0

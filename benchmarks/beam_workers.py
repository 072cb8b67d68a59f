"""Lexicon beam search with an LM in one process against ``--decode-workers N``.

The same engine, model and LM; the runs alternate (1, N, 1, N, ...) so a slow spell of the
shared host hits both. Two timings per run: decoding emissions computed beforehand (what
``lm tune`` repeats per grid point) and ``transcribe`` (the model and the decoding
together, as ``evaluate`` runs them). Every run's transcripts must equal the first one's.

    .venv/bin/python benchmarks/beam_workers.py --model tests/assets/demo_model \\
        --data experiments/low_resource/work/corpus --split dev \\
        --lm experiments/low_resource/work/lm --utterances 24 --beam 500 --workers 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

from wav2vec2 import Wav2Vec2Inference
from wav2vec2.beam_search import BeamSearchConfig
from wav2vec2.data.manifest import read_manifest


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True)
    p.add_argument("--data", required=True, help="folder with SPLIT.tsv")
    p.add_argument("--split", default="dev")
    p.add_argument("--lm", required=True, help="LM directory (wav2vec2 lm build)")
    p.add_argument("--utterances", type=int, default=24, help="evenly spaced over the split")
    p.add_argument("--beam", type=int, default=500)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--out", type=Path, help="results JSON")
    args = p.parse_args()

    root, entries = read_manifest(Path(args.data) / f"{args.split}.tsv")
    step = max(len(entries) // args.utterances, 1)
    files = [str(Path(root) / rel) for rel, _ in entries[::step][: args.utterances]]
    runs, reference = [], None
    for repeat in range(args.repeats):
        for workers in (1, args.workers):
            engine = Wav2Vec2Inference.from_pretrained(args.model, decode_workers=workers)
            decoder = engine.beam_decoder(args.lm, BeamSearchConfig(beam=args.beam))
            emissions = engine.emissions(files)
            start = time.perf_counter()
            decoded = engine.decode_emissions(emissions, decoder)
            decode_s = time.perf_counter() - start
            start = time.perf_counter()
            transcribed = engine.transcribe(files, decoder=decoder)
            transcribe_s = time.perf_counter() - start
            texts = [t.text for t in decoded]
            reference = reference or texts
            same = texts == reference and [t.text for t in transcribed] == reference
            runs.append({"repeat": repeat, "workers": workers, "decode_s": decode_s,
                         "transcribe_s": transcribe_s, "same_transcripts": same})  # fmt: skip
            print(f"workers {workers}: decode {decode_s:.1f} s, transcribe {transcribe_s:.1f} s, "
                  f"same transcripts: {same}", flush=True)  # fmt: skip

    def median(workers: int, key: str) -> float:
        return statistics.median(r[key] for r in runs if r["workers"] == workers)

    summary = {
        key: {"one": median(1, key), "pooled": median(args.workers, key),
              "speedup": median(1, key) / median(args.workers, key)}
        for key in ("decode_s", "transcribe_s")
    }  # fmt: skip
    print(json.dumps(summary, indent=2))
    if args.out:
        result = {"benchmark": "beam_workers", "settings": vars(args) | {"out": str(args.out)},
                  "audio_seconds": sum(e.duration for e in emissions), "runs": runs,
                  "summary": summary, "cpus": os.cpu_count(),
                  "platform": platform.platform(),
                  "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}  # fmt: skip
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""Chunked long-audio transcription against one-by-one, on real speech: the accuracy side of
``--chunk-seconds`` / ``--context-seconds``.

The test utterances of a corpus (the demo's built-in one by default) are joined into one long
file with a short pause between them. The joined file is transcribed in chunks with each
setting, and its WER against the joined references is compared with transcribing the
utterances one by one (the same model, greedy). The issue's bar: within 1 point.

    .venv/bin/python benchmarks/long_audio_accuracy.py --model demo/finetune/checkpoints/best \\
        --data demo/corpus --split test

Writes ``benchmarks/results/long_audio_accuracy.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import jiwer
import numpy as np
import soundfile as sf

from wav2vec2 import Wav2Vec2Inference
from wav2vec2.audio import SAMPLE_RATE, load_audio
from wav2vec2.chunking import ChunkConfig
from wav2vec2.evaluation import labeled_split

SETTINGS = [(10.0, 1.0), (20.0, 2.0), (20.0, 0.0), (30.0, 3.0), (60.0, 5.0)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--split", default="test")
    p.add_argument("--pause", type=float, default=0.3, help="seconds of silence between")
    p.add_argument("--out", type=Path,
                   default=Path(__file__).parent / "results/long_audio_accuracy.json")  # fmt: skip
    args = p.parse_args()
    paths, refs = labeled_split(Path(args.data), args.split)
    engine = Wav2Vec2Inference.from_pretrained(args.model)
    alone = [t.text for t in engine.transcribe(paths)]
    joined_ref = " ".join(refs)
    rows = [{"setting": "one by one", "wer": jiwer.wer(joined_ref, " ".join(alone))}]
    pause = np.zeros(int(args.pause * SAMPLE_RATE), np.float32)
    waves = [w for path in paths for w in (load_audio(path), pause)]
    long_wave = np.concatenate(waves)
    with tempfile.TemporaryDirectory() as tmp:
        long_path = Path(tmp) / "joined.wav"
        sf.write(long_path, long_wave, SAMPLE_RATE, subtype="FLOAT")
        for chunk, context in SETTINGS:
            engine.chunking = ChunkConfig(chunk, context)
            start = time.perf_counter()
            (t,) = engine.transcribe([long_path])
            rows.append({"setting": f"chunks {chunk:g} s, context {context:g} s",
                         "wer": jiwer.wer(joined_ref, t.text),
                         "seconds": time.perf_counter() - start})  # fmt: skip
    result = {"model": args.model, "data": args.data, "split": args.split,
              "utterances": len(paths), "audio_s": len(long_wave) / SAMPLE_RATE,
              "rows": rows}  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{len(paths)} utterances joined: {len(long_wave) / SAMPLE_RATE / 60:.1f} min")
    print("| transcribed | WER |\n|---|---|")
    for r in rows:
        print(f"| {r['setting']} | {100 * r['wer']:.1f} % |")
    print(f"\nwrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()

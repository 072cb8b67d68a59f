"""Chunked long-audio transcription against one-by-one, on real speech: the accuracy side of
``--chunk-seconds`` / ``--context-seconds``.

The utterances of each split are joined into long files with a short pause between them:
with ``--join speaker`` (default) one file per speaker, as a long recording is (the
built-in corpus names files ``<voice>-<number>``); with ``--join all`` one file for the
whole split, voices changing every utterance. Each long file is transcribed in chunks with
each setting (and whole, when it fits the model's training lengths), and the WER against
the joined references is compared with transcribing the utterances one by one (the same
model, greedy). The issue's bar: within 1 point. Splits are also pooled (all words).

    .venv/bin/python benchmarks/long_audio_accuracy.py --model demo/finetune/checkpoints/best \\
        --data demo/corpus --splits test dev

Writes ``benchmarks/results/long_audio_accuracy.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from wav2vec2 import Wav2Vec2Inference
from wav2vec2.audio import SAMPLE_RATE, load_audio
from wav2vec2.chunking import ChunkConfig
from wav2vec2.evaluation import labeled_split
from wav2vec2.metrics import error_counts, rates

SETTINGS = [(10.0, 1.0), (20.0, 2.0), (30.0, 3.0), (60.0, 5.0), (20.0, 0.0)]


def groups_of(paths: list[str], join: str) -> list[list[int]]:
    if join == "all":
        return [list(range(len(paths)))]
    by_speaker = defaultdict(list)
    for i, path in enumerate(paths):
        by_speaker[Path(path).stem.rsplit("-", 1)[0]].append(i)
    return list(by_speaker.values())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--splits", nargs="+", default=["test", "dev"])
    p.add_argument("--join", choices=("speaker", "all"), default="speaker")
    p.add_argument("--pause", type=float, default=0.3, help="seconds of silence between")
    p.add_argument("--out", type=Path,
                   default=Path(__file__).parent / "results/long_audio_accuracy.json")  # fmt: skip
    args = p.parse_args()
    engine = Wav2Vec2Inference.from_pretrained(args.model)
    pause = np.zeros(int(args.pause * SAMPLE_RATE), np.float32)
    counts: dict[str, dict[str, dict]] = defaultdict(dict)  # setting -> split -> errors
    info = {}
    for split in args.splits:
        paths, refs = labeled_split(Path(args.data), split)
        waves = [load_audio(path) for path in paths]
        groups = groups_of(paths, args.join)
        joined = [np.concatenate([w for i in g for w in (waves[i], pause)]) for g in groups]
        joined_refs = [" ".join(refs[i] for i in g) for g in groups]
        alone = [t.text for t in engine.transcribe(waves)]
        alone_joined = [" ".join(alone[i] for i in g) for g in groups]
        counts["one by one"][split] = error_counts(joined_refs, alone_joined)
        longest = max(len(j) for j in joined) / SAMPLE_RATE
        info[split] = {"utterances": len(paths), "files": len(joined),
                       "seconds": sum(len(j) for j in joined) / SAMPLE_RATE,
                       "longest_s": longest}  # fmt: skip
        for chunk, context in SETTINGS:
            engine.chunking = ChunkConfig(chunk, context)
            hyps = [t.text for t in engine.transcribe(joined)]
            counts[f"chunks {chunk:g} s, context {context:g} s"][split] = error_counts(
                joined_refs, hyps
            )
        print(f"{split}: {info[split]}", file=sys.stderr)
    rows = []
    for setting, by_split in counts.items():
        row = {"setting": setting}
        for split, e in [*by_split.items(), ("pooled", _pool(by_split.values()))]:
            row[split] = {**e, **rates(e)}
        rows.append(row)
    result = {"model": args.model, "data": args.data, "join": args.join,
              "pause_s": args.pause, "splits": info, "rows": rows}  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    cols = [*args.splits, "pooled"]
    print("| transcribed | " + " | ".join(f"{c} WER (CER)" for c in cols) + " |")
    print("|---" * (len(cols) + 1) + "|")
    base = rows[0]["pooled"]["wer"]
    for r in rows:
        cells = [f"{100 * r[c]['wer']:.1f} % ({100 * r[c]['cer']:.1f} %)" for c in cols]
        delta = 100 * (r["pooled"]["wer"] - base)
        print(f"| {r['setting']} | " + " | ".join(cells) + f" ({delta:+.1f}) |")
    print(f"\nwrote {args.out}", file=sys.stderr)


def _pool(parts) -> dict:
    parts = list(parts)
    return {k: sum(p[k] for p in parts) for k in parts[0]}


if __name__ == "__main__":
    main()

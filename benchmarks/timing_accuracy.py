"""How close word times are to the truth: greedy timestamps and forced alignment, on speech
whose word boundaries are known to the sample.

The words of a corpus's dev and test transcripts (the first ``--max-words`` of each) are
spoken one by one by the test split's voices
(held-out speakers) and joined with silences of random length (``wav2vec2.corpus.timed``).
Each utterance is transcribed greedily with word times, and aligned to its transcript. The
error of a word is |start - true start| and |end - true end|; greedy scores only the words
it recognized. The issue's goal: alignment median error at most 40 ms with the demo's model.

    .venv/bin/python benchmarks/timing_accuracy.py --model demo/finetune/checkpoints/best \\
        --data demo/corpus

Writes ``benchmarks/results/timing_accuracy.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from wav2vec2 import Wav2Vec2Inference
from wav2vec2.corpus.timed import boundary_errors, timed_utterance
from wav2vec2.corpus.voices import voices_by_split
from wav2vec2.evaluation import labeled_split


def summary(errors: list[float], scored: int, total: int) -> dict:
    ms = np.asarray(errors) * 1000
    return {"words_scored": scored, "words": total,
            "median_ms": float(np.median(ms)) if ms.size else None,
            "p90_ms": float(np.percentile(ms, 90)) if ms.size else None,
            "mean_ms": float(ms.mean()) if ms.size else None,
            # boundary_errors gives (start, end) per word
            "start_median_ms": float(np.median(ms[0::2])) if ms.size else None,
            "end_median_ms": float(np.median(ms[1::2])) if ms.size else None}  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True)
    p.add_argument("--data", required=True, help="corpus whose transcripts are spoken")
    p.add_argument("--splits", nargs="+", default=["test", "dev"])
    p.add_argument("--utterances", type=int, default=100)
    p.add_argument("--max-words", type=int, default=10, help="words per utterance at most")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path,
                   default=Path(__file__).parent / "results/timing_accuracy.json")  # fmt: skip
    args = p.parse_args()
    refs = [r for split in args.splits for r in labeled_split(Path(args.data), split)[1]]
    rng = np.random.default_rng(args.seed)
    voices = voices_by_split()["test"]
    engine = Wav2Vec2Inference.from_pretrained(args.model)
    results = {"greedy": ([], 0), "alignment": ([], 0)}
    total = 0
    for i in range(min(args.utterances, len(refs))):
        words = refs[i].split()[: args.max_words]
        utt = timed_utterance(voices[i % len(voices)], words, rng)
        total += len(utt.words)
        (t,) = engine.transcribe([utt.audio])
        a = engine.align(utt.audio, utt.text)
        for name, got in (("greedy", t.words), ("alignment", a.words)):
            errors, scored = boundary_errors(utt.words, [(w.text, w.start, w.end) for w in got])
            results[name] = (results[name][0] + errors, results[name][1] + scored)
        n = min(args.utterances, len(refs))
        print(f"{i + 1}/{n}: {voices[i % len(voices)].id}: {t.text!r}", file=sys.stderr)
    out = {"model": args.model, "data": args.data, "seed": args.seed,
           "voices": [v.id for v in voices],
           **{name: summary(e, s, total) for name, (e, s) in results.items()}}  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print("| times from | words scored | median error | 90th percentile "
          "| median, starts | median, ends |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for name in results:
        r = out[name]
        if r["median_ms"] is None:
            print(f"| {name} | 0 of {total} | - | - | - | - |")
            continue
        print(f"| {name} | {r['words_scored']} of {total} | {r['median_ms']:.0f} ms "
              f"| {r['p90_ms']:.0f} ms | {r['start_median_ms']:.0f} ms "
              f"| {r['end_median_ms']:.0f} ms |")  # fmt: skip
    print(f"\nwrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()

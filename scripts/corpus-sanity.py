#!/usr/bin/env python3
"""Listening-free sanity check of a made corpus: does the audio say what the labels say?

For each voice, on a few labeled utterances (train_10h, dev, test):

- words per second of audio (audio length versus word count): a voice that dropped or
  spelled out words would stand out;
- when pocketsphinx is importable (``pip install pocketsphinx``: it ships an en-US model),
  the word error rate of that off-the-shelf recognizer.

Usage: python scripts/corpus-sanity.py DEST [--per-voice N]   (prints a Markdown table)
Needs only numpy and soundfile besides the optional pocketsphinx; it does not import
wav2vec2, so it can run from a separate virtual environment.
"""

from __future__ import annotations

import argparse
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import soundfile as sf


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1]


def load_split(dest: Path, name: str) -> list[tuple[Path, str]]:
    lines = (dest / f"{name}.tsv").read_text().splitlines()
    root = Path(lines[0])
    words = (dest / f"{name}.wrd").read_text().splitlines()
    return [(root / line.split("\t")[0], w) for line, w in zip(lines[1:], words)]


def voices(dest: Path) -> dict[str, str]:
    """relpath -> row label: the voice for recorded speakers; espeak-ng grouped by accent."""
    out = {}
    for line in (dest / "utterances.tsv").read_text().splitlines()[1:]:
        path, _, speaker, voice = line.split("\t")[:4]
        if voice.startswith("espeak-"):
            voice = "espeak " + speaker.removeprefix("espeak-").rsplit("-", 1)[0]
        out[path] = voice
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dest", type=Path)
    parser.add_argument("--per-voice", type=int, default=5)
    args = parser.parse_args()

    try:
        from pocketsphinx import Decoder

        decoder = Decoder(samprate=16000, logfn="/dev/null")
    except ImportError:
        decoder = None

    voice_of = voices(args.dest)
    by_voice: dict[tuple[str, str], list[tuple[Path, str]]] = defaultdict(list)
    for split in ("train_10h", "dev", "test"):
        for path, words in load_split(args.dest, split):
            rel = path.relative_to(path.parents[3]).as_posix()  # audio/SPLIT/SPEAKER/x.flac
            key = ("train" if split.startswith("train") else split, voice_of[rel])
            if len(by_voice[key]) < args.per_voice:
                by_voice[key].append((path, words))

    header = "| split | voice | utterances | audio s | words | words/s |"
    rule = "|---|---|---:|---:|---:|---:|"
    if decoder is not None:
        header += " pocketsphinx WER |"
        rule += "---:|"
    print(header)
    print(rule)
    for (split, voice), items in sorted(by_voice.items()):
        seconds = n_words = errors = 0
        for path, words in items:
            audio, rate = sf.read(str(path), dtype="int16")
            seconds += len(audio) / rate
            ref = words.split()
            n_words += len(ref)
            if decoder is not None:
                decoder.start_utt()
                decoder.process_raw(audio.tobytes(), full_utt=True)
                decoder.end_utt()
                hyp = decoder.hyp().hypstr if decoder.hyp() else ""
                hyp_words = re.sub(r"\(\d+\)", "", hyp).upper().split()
                errors += edit_distance(ref, hyp_words)
        rate = n_words / seconds
        row = f"| {split} | {voice} | {len(items)} | {seconds:.1f} | {n_words} | {rate:.2f} |"
        if decoder is not None:
            row += f" {100 * errors / n_words:.1f}% |"
        print(row)
    rates = [
        sum(len(w.split()) for _, w in items) / sum(sf.info(str(p)).duration for p, _ in items)
        for items in by_voice.values()
    ]
    mean, low, high = np.mean(rates), min(rates), max(rates)
    print(f"\nwords/s over voices: mean {mean:.2f}, min {low:.2f}, max {high:.2f}")


if __name__ == "__main__":
    main()

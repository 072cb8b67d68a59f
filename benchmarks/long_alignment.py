"""Forced alignment of long audio: wall time and peak memory of the Viterbi search
(:func:`wav2vec2.alignment.forced_align`) on synthetic emissions.

The emissions are (frames, 32) log posteriors: noise, the blank favoured, and a spike for
each letter of a random transcript at a random frame (its true frame). Time and memory
depend on the number of frames and letters, not on what the emissions say; the fraction
of letters placed on their true frame is printed as a sanity check. Peak memory is that of
the search's own arrays (``tracemalloc``, which sees NumPy's allocations), beside what the
plain Viterbi's backpointers alone would take (a byte per state per frame). The search is
single-threaded: on a shared host, CPU seconds are the steadier figure.

    .venv/bin/python benchmarks/long_alignment.py                  # 1 h, 5k and 10k words
    .venv/bin/python benchmarks/long_alignment.py --minutes 10 --words 1000

Writes ``benchmarks/results/long_alignment.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
import tracemalloc
from pathlib import Path

import numpy as np
import torch

from wav2vec2.alignment import _segment_frames, forced_align

FRAMES_PER_MINUTE = 3000  # 20 ms frames
LETTERS_PER_WORD = 5.4  # LibriSpeech's mean, counting the word delimiter


def emissions(frames: int, letters: int, seed: int = 0) -> tuple[torch.Tensor, np.ndarray, ...]:
    """(log_probs, targets, true frame of each target)."""
    rng = np.random.default_rng(seed)
    targets = rng.integers(4, 32, letters)
    logits = rng.standard_normal((frames, 32)).astype(np.float32)
    logits[:, 0] += 3.0  # the blank, the usual winner between letters
    where = np.sort(rng.choice(frames, letters, replace=False))
    logits[where, targets] += 8.0
    return torch.from_numpy(logits).log_softmax(-1), targets, where


def measure(minutes: float, words: int) -> dict:
    frames, letters = int(minutes * FRAMES_PER_MINUTE), round(words * LETTERS_PER_WORD)
    log_probs, targets, where = emissions(frames, letters)
    tracemalloc.start()
    t0, c0 = time.perf_counter(), time.process_time()
    path = forced_align(log_probs, targets.tolist(), blank=0)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    found = np.searchsorted(path.states.numpy(), 2 * np.arange(letters) + 1)
    return {
        "minutes": minutes, "frames": frames, "words": words, "letters": letters,
        "segment_frames": _segment_frames(frames, letters), "seconds": round(seconds, 1),
        "cpu_seconds": round(cpu, 1),
        "peak_mib": round(peak / 2**20, 1),
        "plain_backpointers_mib": round(frames * (2 * letters + 1) / 2**20),
        "letters_on_their_frame": round(float(np.mean(found == where)), 4),
    }  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=60.0)
    p.add_argument("--words", type=int, nargs="+", default=[5000, 10000])
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = p.parse_args()
    rows = [measure(args.minutes, w) for w in args.words]
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"machine": platform.processor() or platform.machine(), "torch": torch.__version__,
              "threads": torch.get_num_threads(), "cases": rows}  # fmt: skip
    (args.out / "long_alignment.json").write_text(json.dumps(report, indent=1) + "\n")
    print("| audio | words (letters) | segment | wall (CPU) time | peak memory | plain table |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['minutes']:g} min ({r['frames']} frames) | {r['words']} ({r['letters']}) "
              f"| {r['segment_frames']} frames | {r['seconds']} s ({r['cpu_seconds']} s) "
              f"| {r['peak_mib']} MiB "
              f"| {r['plain_backpointers_mib']} MiB |")  # fmt: skip


if __name__ == "__main__":
    main()

"""Long-audio transcription: wall time, real-time factor and peak memory of the engine on
one file of 10 minutes and of 1 hour, greedy and with lexicon beam search.

Each case runs in its own fresh subprocess (its peak RSS, ``ru_maxrss``, is its own) with
a randomly initialised CTC model of the preset's size: time and memory depend on the
architecture and the audio length, not on what the weights learned. The audio is a
synthetic 16 kHz FLAC (speech-like harmonics, pauses), written once. Beam search uses a
small word 4-gram built with ``wav2vec2 lm build`` on generated text; a random model's
emissions are flat, which makes the search about as busy as it gets (a pessimistic RTF).

    .venv/bin/python benchmarks/long_audio.py                      # small and base, 10 min and 1 h
    .venv/bin/python benchmarks/long_audio.py --presets base --minutes 10 --decoders greedy

Writes ``benchmarks/results/long_audio.json`` and prints a Markdown table. Wall times on
this shared 2-core host are noisy; CPU seconds per wall second are recorded beside them.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

sys.path.insert(0, str(Path(__file__).parent))
from sidebyside import allocator_in_use, matmul_probe, run_child  # noqa: E402

RATE = 16_000
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ'"


def synthetic_speech(path: Path, seconds: float, seed: int = 0) -> None:
    """Harmonic 'syllables' with pauses, written block by block (an hour never sits whole
    in the parent's memory)."""
    rng = np.random.default_rng(seed)
    with sf.SoundFile(path, "w", RATE, 1, format="FLAC") as f:
        left = int(seconds * RATE)
        while left > 0:
            n = min(left, RATE * 10)
            t = np.arange(n) / RATE
            f0 = rng.uniform(90, 220)
            wave = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 8))
            envelope = np.clip(np.sin(2 * np.pi * rng.uniform(2, 5) * t), 0, None)
            f.write((0.1 * wave * envelope).astype(np.float32))
            left -= n


def word_list(count: int = 2000, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return ["".join(rng.choice(list(LETTERS[:26]), rng.integers(2, 9))) for _ in range(count)]


def build_lm(workdir: Path) -> Path:
    words = word_list()
    rng = np.random.default_rng(1)
    text = workdir / "lm.txt"
    text.write_text("".join(" ".join(rng.choice(words, 12)) + "\n" for _ in range(5000)))
    lm = workdir / "lm"
    subprocess.run([sys.executable, "-m", "wav2vec2", "lm", "build", str(text), "--out", str(lm)],
                   check=True, capture_output=True)  # fmt: skip
    return lm


def worker(args: argparse.Namespace) -> None:
    """One case in this process: build the model, transcribe the file, report."""
    from wav2vec2 import Wav2Vec2Inference, Wav2Vec2Model
    from wav2vec2.beam_search import BeamSearchConfig
    from wav2vec2.config import preset
    from wav2vec2.vocab import Vocabulary

    torch.manual_seed(0)
    vocab = Vocabulary.from_fairseq_symbols(["|", *LETTERS])
    cfg = preset(args.preset).with_overrides(vocab_size=len(vocab.tokens))
    engine = Wav2Vec2Inference(Wav2Vec2Model(cfg).eval(), vocab)
    decoder = None
    if args.decoder == "beam":
        decoder = engine.beam_decoder(args.lm, BeamSearchConfig(beam=args.beam))
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    cpu0, wall0 = time.process_time(), time.perf_counter()
    (result,) = engine.transcribe([args.audio], decoder=decoder)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    assert result.ok, result.error
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    report = {
        "preset": args.preset, "decoder": args.decoder, "audio_s": result.duration,
        "wall_s": wall, "rtf": wall / result.duration, "cpu_per_wall": cpu / wall,
        "peak_rss_mib": peak, "rss_before_mib": rss_before, "words": len(result.words),
        "allocator": allocator_in_use(),
    }  # fmt: skip
    print("RESULT " + json.dumps(report))


def run_case(args, preset: str, decoder: str, audio: Path, lm: Path | None) -> dict:
    cmd = [sys.executable, __file__, "--worker", "--preset", preset, "--decoder", decoder,
           "--audio", str(audio), "--beam", str(args.beam)]  # fmt: skip
    if lm is not None:
        cmd += ["--lm", str(lm)]
    return run_child(cmd, args.allocator, f"{preset}/{decoder}")


def markdown(rows: list[dict]) -> str:
    out = ["| preset | decoder | audio | wall | RTF | CPU s / wall s | peak RSS |",
           "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        out.append(
            f"| {r['preset']} | {r['decoder']} | {r['audio_s'] / 60:.0f} min | "
            f"{r['wall_s']:.0f} s | {r['rtf']:.3f} | {r['cpu_per_wall']:.2f} | "
            f"{r['peak_rss_mib']:.0f} MiB |"
        )
    return "\n".join(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--presets", nargs="+", default=["small", "base"])
    p.add_argument("--minutes", nargs="+", type=float, default=[10, 60])
    p.add_argument("--decoders", nargs="+", default=["greedy", "beam"])
    p.add_argument("--beam", type=int, default=50)
    p.add_argument("--allocator", default="glibc", choices=("glibc", "tcmalloc"))
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results/long_audio.json")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--preset", help=argparse.SUPPRESS)
    p.add_argument("--decoder", help=argparse.SUPPRESS)
    p.add_argument("--audio", help=argparse.SUPPRESS)
    p.add_argument("--lm", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args)
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        lm = build_lm(work) if "beam" in args.decoders else None
        for minutes in args.minutes:
            audio = work / f"{minutes:g}min.flac"
            synthetic_speech(audio, minutes * 60)
            for preset in args.presets:
                for decoder in args.decoders:
                    probe = matmul_probe()
                    row = run_case(args, preset, decoder, audio, lm)
                    row["matmul_gflops_before"] = probe
                    rows.append(row)
                    print(markdown([row]).splitlines()[-1], file=sys.stderr, flush=True)
    result = {"host": platform.node(), "torch": torch.__version__,
              "threads": torch.get_num_threads(), "rows": rows}  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(markdown(rows))
    print(f"\nwrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()

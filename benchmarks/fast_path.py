"""CTC inference, 10 s at batch 1: PyTorch fp32 and bf16 autocast (ours; ``--precision
bf16``, the ``--fast`` path on a CPU with AMX), ONNX Runtime fp32 and int8 (``--backend
onnx`` / ``onnx-int8``, ``--fast`` without AMX), and transformers' ``Wav2Vec2ForCTC`` fp32; and the
accuracy of each path: greedy CER on the demo corpus's test set, and the logits against ours.

Two models: the demo's (tests/assets/demo_model, SMALL fine-tuned on the built-in corpus)
and BASE with random weights and the demo's vocabulary (speed and logits only). Every path
gets the same weights (transformers': ours written by ``interop.huggingface.write_hf_dir``)
and the same waveform. The paths alternate within each repeat (the order rotates), each
repeat starts with a matmul probe, and a call whose CPU time per wall second falls well
under the thread count, or whose repeat's probe is well under the best, is flagged noisy:
the method of benchmarks/pretrain_step.py, whose helpers this reuses. Medians are over the
clean calls. The whole run is under one allocator (tcmalloc when installed: the process
re-executes itself with it preloaded).

    .venv/bin/python benchmarks/fast_path.py --data demo/corpus

Writes ``benchmarks/results/fast_path.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sidebyside import (
    NOISY_CPU_FRACTION,
    NOISY_PROBE_FRACTION,
    TCMALLOC,
    allocator_in_use,
    child_env,
    generated_audio,
    matmul_probe,
)

from wav2vec2 import Wav2Vec2Inference
from wav2vec2.audio import load_audio
from wav2vec2.checkpoint.model_dir import save_model_dir
from wav2vec2.config import BASE
from wav2vec2.evaluation import labeled_split
from wav2vec2.fast_path import bf16_is_fast
from wav2vec2.inference import PRECISIONS
from wav2vec2.interop.huggingface import write_hf_dir
from wav2vec2.loading import load_pretrained
from wav2vec2.metrics import error_counts, rates
from wav2vec2.models.wav2vec2 import Wav2Vec2Model
from wav2vec2.onnx_backend import OnnxCTCModel
from wav2vec2.onnx_export import export_onnx

DEMO = Path(__file__).parents[1] / "tests" / "assets" / "demo_model"
PATHS = ("torch fp32", "torch bf16", "onnx fp32", "onnx int8", "transformers fp32")


def base_model(dest: Path) -> Path:
    """BASE with random weights and the demo's vocabulary, as our model directory."""
    vocab = load_pretrained(DEMO).vocab
    torch.manual_seed(0)
    cfg = replace(BASE, quantizer=None, pretraining=None, vocab_size=len(vocab))
    return save_model_dir(Wav2Vec2Model(cfg).eval(), dest, vocab)


def build(model_dir: Path, work: Path) -> dict[str, Any]:
    """Each path's ``run(waveform (1, T)) -> logits (T', vocab)``."""
    import transformers

    loaded = load_pretrained(model_dir)
    ours = loaded.model
    ours.set_masked_group_norm(True)
    onnx32 = OnnxCTCModel(export_onnx(model_dir, work / "fp32.onnx"))
    onnx8 = OnnxCTCModel(export_onnx(model_dir, work / "int8.onnx", int8=True))
    write_hf_dir(ours.state_dict(), ours.cfg, loaded.vocab, work / "hf")
    hf = transformers.Wav2Vec2ForCTC.from_pretrained(work / "hf").eval()

    def lengths(x):
        return torch.tensor([x.shape[1]])

    def bf16(x):  # the engine's --precision bf16: autocast, logits back in float32
        with torch.autocast("cpu", dtype=PRECISIONS["bf16"]):
            return ours.ctc(x, lengths(x)).logits[0].float()

    return {
        "torch fp32": lambda x: ours.ctc(x, lengths(x)).logits[0],
        "torch bf16": bf16,
        "onnx fp32": lambda x: onnx32.ctc(x, lengths(x)).logits[0],
        "onnx int8": lambda x: onnx8.ctc(x, lengths(x)).logits[0],
        "transformers fp32": lambda x: hf(x).logits[0],
        "_files": {"onnx fp32": work / "fp32.onnx", "onnx int8": work / "int8.onnx"},
        "_vocab": loaded.vocab,
    }


@torch.inference_mode()
def time_paths(runs: dict[str, Any], x: torch.Tensor, repeats: int, threads: int) -> dict:
    for name in PATHS:  # warm up: first calls allocate and pick kernels
        runs[name](x)
    calls = []
    for rep in range(repeats):
        probe = matmul_probe()
        order = PATHS[rep % len(PATHS) :] + PATHS[: rep % len(PATHS)]
        for name in order:
            wall, cpu = time.perf_counter(), time.process_time()
            runs[name](x)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            calls.append({"path": name, "repeat": rep, "wall_s": wall, "cpu_per_wall": cpu / wall,
                          "probe_gflops": probe})  # fmt: skip
            print(f"repeat {rep} {name:>17}: {wall:.3f} s, cpu/wall {cpu / wall:.2f}, "
                  f"probe {probe:.0f} GFLOP/s", file=sys.stderr)  # fmt: skip
    best = max(c["probe_gflops"] for c in calls)
    for c in calls:
        noisy = c["cpu_per_wall"] < NOISY_CPU_FRACTION * threads
        c["noisy"] = noisy or c["probe_gflops"] < NOISY_PROBE_FRACTION * best
    clean = [c for c in calls if not c["noisy"]]
    use_clean = all(any(c["path"] == p for c in clean) for p in PATHS)
    chosen = clean if use_clean else calls
    med = {p: statistics.median(c["wall_s"] for c in chosen if c["path"] == p) for p in PATHS}
    return {
        "medians_over": "clean calls" if use_clean else "all calls (all noisy)",
        "median_s": med,
        "speedup_over_transformers": {p: med["transformers fp32"] / med[p] for p in PATHS},
        "speedup_over_torch": {p: med["torch fp32"] / med[p] for p in PATHS},
        "calls": calls,
    }


@torch.inference_mode()
def logits_vs_ours(runs: dict[str, Any], waves: list[np.ndarray]) -> dict[str, dict]:
    """Per path: the largest absolute difference from ours, the relative error (Frobenius,
    median and max over inputs) and the share of frames with the same best label."""
    out = {}
    ref = [runs["torch fp32"](torch.from_numpy(w)[None]) for w in waves]
    for name in PATHS[1:]:
        got = [runs[name](torch.from_numpy(w)[None]) for w in waves]
        rel = [float((g - r).norm() / r.norm()) for g, r in zip(got, ref)]
        out[name] = {
            "max_abs_diff": max(float((g - r).abs().max()) for g, r in zip(got, ref)),
            "median_rel_error": statistics.median(rel),
            "max_rel_error": max(rel),
            "argmax_agreement": float(
                np.mean(
                    [float((g.argmax(-1) == r.argmax(-1)).float().mean()) for g, r in zip(got, ref)]
                )  # fmt: skip
            ),
        }
    return out


def greedy_cer(runs: dict[str, Any], data: Path, split: str) -> dict[str, Any]:
    """Greedy CER and WER of each path on the split: the engine for ours and ONNX Runtime
    (transcripts as the CLI makes them), our greedy decoder on transformers' logits."""
    paths, refs = labeled_split(data, split)
    result: dict[str, Any] = {"utterances": len(paths)}
    engines = {
        "torch fp32": Wav2Vec2Inference.from_pretrained(DEMO),
        "torch bf16": Wav2Vec2Inference.from_pretrained(DEMO, precision="bf16"),
        "onnx fp32": Wav2Vec2Inference.from_pretrained(runs["_files"]["onnx fp32"]),
        "onnx int8": Wav2Vec2Inference.from_pretrained(runs["_files"]["onnx int8"]),
    }
    for name, engine in engines.items():
        result[name] = rates(error_counts(refs, [t.text for t in engine.transcribe(paths)]))
    decoder = engines["torch fp32"].decoder
    with torch.inference_mode():
        logits = [runs["transformers fp32"](torch.from_numpy(load_audio(p))[None]) for p in paths]
    hyps = [decoder.decode(g[None], torch.tensor([g.shape[0]]))[0].text for g in logits]
    result["transformers fp32"] = rates(error_counts(refs, hyps))
    result["waves"] = [load_audio(p) for p in paths]  # for logits_vs_ours; dropped from JSON
    return result


def markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [
        f"CTC inference, {result['seconds']:g} s at batch 1, {m['threads']} threads, "
        f"{m['allocator']}, {result['repeats']} repeats",
        "",
        "| model | path | median (s) | × transformers | × ours fp32 | logits rel. error "
        "| same best label | greedy CER (test) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for case, r in result["cases"].items():
        t = r["timing"]
        lines[0] += f"; {case}: medians over {t['medians_over']}"
        for p in PATHS:
            acc = r["logits"].get(p)
            err = f"{acc['median_rel_error']:.1e}" if acc else "(reference)"
            same = f"{100 * acc['argmax_agreement']:.1f}%" if acc else ""
            cer = r.get("cer", {}).get(p)
            cer_s = f"{100 * cer['cer']:.2f}%" if cer else ""
            lines.append(
                f"| {case} | {p} | {t['median_s'][p]:.3f} "
                f"| {t['speedup_over_transformers'][p]:.2f} | {t['speedup_over_torch'][p]:.2f} "
                f"| {err} | {same} | {cer_s} |"
            )
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=Path("demo/corpus"),
                   help="the demo's corpus (`make demo`), for greedy CER")  # fmt: skip
    p.add_argument("--split", default="test")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--threads", type=int, default=0, help="torch and ORT threads (0: torch's)")
    p.add_argument("--cases", nargs="+", default=["demo", "base"], choices=["demo", "base"])
    p.add_argument("--allocator", choices=["auto", "tcmalloc", "glibc"], default="auto")
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results/fast_path.json")
    args = p.parse_args()
    if args.allocator == "auto":
        args.allocator = "tcmalloc" if Path(TCMALLOC).is_file() else "glibc"
    if (args.allocator == "tcmalloc") != (allocator_in_use() == "tcmalloc"):
        # re-run under the allocator asked for (LD_PRELOAD only acts at process start)
        argv = [sys.executable, *sys.argv, "--allocator", args.allocator]
        os.execve(sys.executable, argv, child_env(args.allocator))
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    gen = torch.Generator().manual_seed(0)
    x = generated_audio(1, int(args.seconds * 16_000), 16_000, gen)
    result: dict[str, Any] = {
        "seconds": args.seconds, "repeats": args.repeats, "cases": {},
        "machine": {"threads": threads, "allocator": allocator_in_use(),
                    "cpu": platform.processor() or platform.machine(),
                    "torch": torch.__version__, "amx": bf16_is_fast("cpu"), **_versions()},
    }  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="w2v2-fast-") as tmp:
        for case in args.cases:
            work = Path(tmp) / case
            model_dir = DEMO if case == "demo" else base_model(work / "model")
            runs = build(model_dir, work)
            entry: dict[str, Any] = {"timing": time_paths(runs, x, args.repeats, threads)}
            waves = [x[0].numpy()]
            if case == "demo" and (args.data / f"{args.split}.tsv").is_file():
                entry["cer"] = greedy_cer(runs, args.data, args.split)
                waves = entry["cer"].pop("waves")
            entry["logits"] = logits_vs_ours(runs, waves)
            result["cases"][case] = entry
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(markdown(result))


def _versions() -> dict[str, str]:
    import onnxruntime
    import transformers

    return {"onnxruntime": onnxruntime.__version__, "transformers": transformers.__version__}


if __name__ == "__main__":
    main()

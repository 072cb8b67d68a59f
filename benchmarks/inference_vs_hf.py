"""fp32 CTC inference time: our engine against transformers' Wav2Vec2ForCTC, same weights.

Two cases:
- ``single`` (default): one utterance of ``--seconds`` (10 s), batch 1;
- ``mixed`` (``benchmarks/mixed_lengths.py``): ``--files`` utterances of 2 to 20 s. Ours is
  the engine's length-bucketed exact batching (``Wav2Vec2Inference.emissions``);
  transformers' is one zero-padded batch, as its feature extractor makes for a group-norm
  model (which returns no attention mask for them).

Both sides get the same architecture (our preset with a CTC head), the same weights
(transformers' random init, written with ``save_pretrained`` and read by our ``load_model``),
the same audio and the same allocator. Before timing, the parent checks the outputs: ours
against transformers' (single), and each side's batched output against the same model run
on each utterance alone (mixed). It counts each side's FLOPs with torch's
``FlopCounterMode`` and reports the achieved GFLOP/s against a 1024^3 matmul probe taken just
before every timed subprocess.

    .venv/bin/python benchmarks/inference_vs_hf.py
    .venv/bin/python benchmarks/mixed_lengths.py
    .venv/bin/python benchmarks/inference_vs_hf.py --baseline-src /path/to/old/src

``--baseline-src`` adds a third side, our engine imported from another source tree (A/B of a
speed change). ``ratio`` is transformers' median time over ours: > 1 means we are faster.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).parent))
from sidebyside import (  # noqa: E402
    add_allocator_arg,
    allocator_in_use,
    alternation,
    clean_runs,
    flag_noisy,
    generated_audio,
    machine,
    matmul_probe,
    paired_ratios,
    peak_rss_mib,
    reset_peak_rss,
    resolve_allocator,
    run_child,
    timed,
)

LETTERS = list("ETAONISHRDLUCMWFGYPBVK'XJQZ")


# -- setup (parent) --------------------------------------------------------------------------


def lengths_for(args: argparse.Namespace, rate: int) -> list[int]:
    """Samples per utterance: one of ``--seconds``, or ``--files`` drawn in [2, 20] s."""
    if args.case == "single":
        return [int(args.seconds * rate)] * args.batch
    gen = torch.Generator().manual_seed(args.seed)
    seconds = 2 + 18 * torch.rand(args.files, generator=gen)
    seconds[0], seconds[-1] = 2.0, 20.0  # the whole range, every time
    return [int(s * rate) for s in seconds.tolist()]


def prepare(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Write the model (transformers' format) and the audio to ``workdir``; check outputs;
    count FLOPs."""
    import transformers

    from wav2vec2.config import preset
    from wav2vec2.interop.huggingface import config_to_hf
    from wav2vec2.vocab import Vocabulary

    vocab = Vocabulary.from_fairseq_symbols(["|", *LETTERS])
    cfg = preset(args.preset).with_overrides(
        **{"transformer.layerdrop": 0.0, "vocab_size": len(vocab), "quantizer": None,
           "pretraining": None}
    )  # fmt: skip
    torch.manual_seed(args.seed)
    hf = transformers.Wav2Vec2ForCTC(transformers.Wav2Vec2Config(**config_to_hf(cfg, vocab)))
    hf.save_pretrained(workdir / "model")
    (workdir / "vocab.json").write_text(json.dumps(list(vocab.tokens)))
    lengths = lengths_for(args, cfg.sample_rate)
    gen = torch.Generator().manual_seed(args.seed)
    waves = [generated_audio(1, n, cfg.sample_rate, gen)[0] for n in lengths]
    torch.save(waves, workdir / "audio.pt")
    return {
        "preset": args.preset,
        "case": args.case,
        "seconds": [n / cfg.sample_rate for n in lengths],
        "parameters": sum(p.numel() for p in hf.parameters()),
        **check_outputs(workdir, waves),
    }


def check_outputs(workdir: Path, waves: list[torch.Tensor]) -> dict[str, Any]:
    """Max |difference| of logits over each utterance's valid frames: ours against
    transformers (each alone), and each side's timed path against its own one-at-a-time."""
    from torch.utils.flop_counter import FlopCounterMode

    hf, engine = load_side("transformers", workdir), load_side("ours", workdir)
    model = engine.model
    # FlopCounterMode's module tracker hooks the gradients of tensors that require them,
    # which fails on weight norm's output under inference mode: no parameter needs one here.
    for p in [*hf.parameters(), *model.parameters()]:
        p.requires_grad_(False)
    with torch.inference_mode():
        alone_ours = [model.ctc(w[None]).logits[0] for w in waves]
        alone_hf = [hf(w[None]).logits[0] for w in waves]
        with FlopCounterMode(display=False) as ours_flops:
            batched_ours = [e.logits for e in engine.emissions(waves)]
        with FlopCounterMode(display=False) as hf_flops:
            padded = hf_forward(hf, waves)

    def worst(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
        return max(float((x[: len(y)] - y[: len(x)]).abs().max()) for x, y in zip(a, b))

    frames = [len(x) for x in alone_ours]
    return {
        "frames": frames,
        "max_abs_logit": max(float(x.abs().max()) for x in alone_ours),
        "max_abs_diff": {
            "ours_vs_transformers_alone": worst(alone_ours, alone_hf),
            "ours_timed_vs_ours_alone": worst(batched_ours, alone_ours),
            "transformers_timed_vs_transformers_alone": worst(
                [row[:n] for row, n in zip(padded, frames)], alone_hf
            ),
        },
        "gflop": {
            "ours": ours_flops.get_total_flops() / 1e9,
            "transformers": hf_flops.get_total_flops() / 1e9,
        },
    }


# -- one implementation, timed (child process) -----------------------------------------------


def load_side(impl: str, workdir: Path, device: str = "cpu", precision: str = "fp32"):
    """transformers' Wav2Vec2ForCTC, or our engine (exact batching, as `transcribe` runs),
    on ``device``; ours runs in ``precision`` (transformers' autocast is the caller's)."""
    if impl == "transformers":
        import transformers

        return transformers.Wav2Vec2ForCTC.from_pretrained(workdir / "model").to(device).eval()
    from wav2vec2.inference import Wav2Vec2Inference
    from wav2vec2.loading import load_model
    from wav2vec2.vocab import Vocabulary

    vocab = Vocabulary(tuple(json.loads((workdir / "vocab.json").read_text())))
    return Wav2Vec2Inference(load_model(str(workdir / "model")), vocab, device, precision=precision)


def hf_forward(hf, waves: list[torch.Tensor]) -> torch.Tensor:
    """transformers' logits (B, T, V) for one zero-padded batch, no attention mask: what its
    feature extractor gives a group-norm model."""
    batch = torch.nn.utils.rnn.pad_sequence(waves, batch_first=True)
    return hf(batch).logits


def worker(args: argparse.Namespace) -> None:
    workdir = Path(args.workdir)
    if args.threads:
        torch.set_num_threads(args.threads)
    waves = torch.load(workdir / "audio.pt")
    impl = "transformers" if args.worker == "transformers" else "ours"
    side = load_side(impl, workdir, args.device, args.precision)
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    if args.worker == "transformers":
        waves = [w.to(device) for w in waves]
        from wav2vec2.inference import PRECISIONS

        dtype = PRECISIONS[args.precision]

        def run() -> None:
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                hf_forward(side, waves)
            if cuda:
                torch.cuda.synchronize()
    else:
        arrays = [w.numpy() for w in waves]

        def run() -> None:
            side.emissions(arrays)  # its logits come back to the host: synchronized

    reset_peak_rss()
    with torch.inference_mode():
        for _ in range(args.warmup):
            run()
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        wall, cpu = timed(run, 0, args.runs)
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
    result = {
        "impl": args.worker,
        "wall_s": wall,
        "cpu_s": cpu,
        "cpu_per_wall": sum(cpu) / sum(wall),
        "peak_rss_mib": peak_rss_mib(),
        # Page faults per timed run: what the allocator costs (glibc returns freed blocks
        # to the kernel and faults them in again), and steady under a noisy host.
        "minor_faults_per_run": faults / args.runs,
        "threads": torch.get_num_threads(),
        "allocator": allocator_in_use(),
        "device": device.type,
    }
    if cuda:
        result["peak_gpu_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
        result["gpu"] = torch.cuda.get_device_name(device)
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        with torch.inference_mode(), profile(activities=[ProfilerActivity.CPU]) as prof:
            run()
        result["profile"] = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15)
    print("RESULT " + json.dumps(result))


# -- orchestration (parent) ------------------------------------------------------------------


def summarize(runs: list[dict[str, Any]], impls: tuple[str, ...], gflop: dict) -> dict:
    flag_noisy(runs)
    chosen, over = clean_runs(runs, impls)
    out: dict[str, Any] = {"medians_over": over}
    for impl in impls:
        mine = [r for r in chosen if r["impl"] == impl]
        wall = statistics.median(w for r in mine for w in r["wall_s"])
        flops = gflop["transformers" if impl == "transformers" else "ours"]
        out[impl] = {
            "median_s": wall,
            "min_s": min(w for r in mine for w in r["wall_s"]),
            "median_cpu_s": statistics.median(c for r in mine for c in r["cpu_s"]),
            "timed_runs": sum(len(r["wall_s"]) for r in mine),
            "gflop_per_s": flops / wall,
            "probe_gflop_per_s": statistics.median(r["probe_gflops"] for r in mine),
            "peak_rss_mib": max(r["peak_rss_mib"] for r in runs if r["impl"] == impl),
            "median_cpu_per_wall": statistics.median(r["cpu_per_wall"] for r in mine),
            "minor_faults_per_run": statistics.median(
                r["minor_faults_per_run"] for r in runs if r["impl"] == impl
            ),
        }
        gpu = [r["peak_gpu_mib"] for r in runs if r["impl"] == impl and "peak_gpu_mib" in r]
        if gpu:
            out[impl]["peak_gpu_mib"] = max(gpu)
    for other in impls[1:]:
        out[f"ratio_{other}_over_ours"] = out[other]["median_s"] / out["ours"]["median_s"]
        out[f"cpu_ratio_{other}_over_ours"] = (
            out[other]["median_cpu_s"] / out["ours"]["median_cpu_s"]
        )
        out[f"paired_{other}_over_ours"] = paired_ratios(runs, "ours", other, "wall_s")
    return out


def markdown(result: dict[str, Any]) -> str:
    s, setup = result["summary"], result["setup"]
    secs = setup["seconds"]
    what = (
        f"1 x {secs[0]:g} s"
        if len(secs) == 1
        else f"{len(secs)} files of {min(secs):.1f}-{max(secs):.1f} s ({sum(secs):.0f} s in all)"
    )
    d = setup["max_abs_diff"]
    lines = [
        f"CTC inference, preset `{setup['preset']}`, {what}, "
        f"{result['settings'].get('precision', 'fp32')} on "
        f"{result['settings'].get('device', 'cpu')}, "
        f"{result['machine']['threads']} threads, {result['machine']['allocator']}; "
        f"medians over {s['medians_over']}",
        "",
        "| implementation | median (s) | min (s) | CPU s | GFLOP | GFLOP/s | probe GFLOP/s "
        "| peak RSS (MiB) | page faults | CPU/wall |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for impl in result["impls"]:
        r = s[impl]
        g = setup["gflop"]["transformers" if impl == "transformers" else "ours"]
        lines.append(
            f"| {impl} | {r['median_s']:.3f} | {r['min_s']:.3f} | {r['median_cpu_s']:.3f} "
            f"| {g:.0f} | {r['gflop_per_s']:.0f} | {r['probe_gflop_per_s']:.0f} "
            f"| {r['peak_rss_mib']:.0f} | {r['minor_faults_per_run']:.0f} "
            f"| {r['median_cpu_per_wall']:.2f} |"
        )
    lines.append("")
    if "peak_gpu_mib" in s["ours"]:
        gpu = ", ".join(f"{impl} {s[impl]['peak_gpu_mib']:.0f}" for impl in result["impls"])
        lines += [f"Peak GPU memory (MiB, `max_memory_allocated`): {gpu}.", ""]
    for other in result["impls"][1:]:
        paired = ", ".join(
            f"{x['ratio']:.2f}{'*' if x['noisy'] else ''}" for x in s[f"paired_{other}_over_ours"]
        )
        lines.append(
            f"Time ratio {other} / ours: **{s[f'ratio_{other}_over_ours']:.2f}** (per repeat: "
            f"{paired}); CPU-time ratio {s[f'cpu_ratio_{other}_over_ours']:.2f}."
        )
    lines += [
        "",
        f"Max |logit difference| (logits up to {setup['max_abs_logit']:.1f}): ours vs "
        f"transformers, each utterance alone {d['ours_vs_transformers_alone']:.1e}; ours as "
        f"timed vs ours alone {d['ours_timed_vs_ours_alone']:.1e}; transformers as timed vs "
        f"transformers alone {d['transformers_timed_vs_transformers_alone']:.1e}.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None, case: str = "single") -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--case", choices=["single", "mixed"], default=case)
    p.add_argument("--preset", default="base", choices=["small", "base", "large", "large_lv60k"])
    p.add_argument("--seconds", type=float, default=10.0, help="single: seconds of audio")
    p.add_argument("--batch", type=int, default=1, help="single: utterances per batch")
    p.add_argument("--files", type=int, default=8, help="mixed: utterances of 2-20 s")
    p.add_argument("--runs", type=int, default=5, help="timed runs per subprocess")
    p.add_argument("--warmup", type=int, default=2, help="untimed runs per subprocess")
    p.add_argument("--repeats", type=int, default=3, help="subprocesses per implementation")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--baseline-src", type=Path, help="also time our engine from this src tree")
    p.add_argument("--device", default="cpu", help="cpu, or cuda for the GPU figures")
    p.add_argument(
        "--precision", choices=["fp32", "bf16", "fp16"], default="fp32",
        help="both sides under autocast to this dtype (bf16/fp16: the GPU path)",
    )  # fmt: skip
    add_allocator_arg(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, help="JSON result (default benchmarks/results/...)")
    p.add_argument("--profile", action="store_true", help="print a profiled run of each")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--workdir", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        worker(args)
        return
    args.allocator = resolve_allocator(args.allocator)
    if args.threads:
        torch.set_num_threads(args.threads)
    name = "inference_vs_hf" if args.case == "single" else "mixed_lengths"
    out_path = args.out or Path(__file__).parent / "results" / f"{name}_{args.preset}.json"
    impls: tuple[str, ...] = ("ours", "transformers")
    if args.baseline_src:
        impls += ("ours-baseline",)

    with tempfile.TemporaryDirectory(prefix="w2v2-bench-") as tmp:
        workdir = Path(tmp)
        setup = prepare(args, workdir)
        print(f"setup: {json.dumps(setup['max_abs_diff'])}", file=sys.stderr)
        runs = []
        for rep, impl in alternation(impls, args.repeats):
            cmd = [
                sys.executable, __file__, "--worker", impl, "--workdir", str(workdir),
                "--runs", str(args.runs), "--warmup", str(args.warmup),
                "--threads", str(args.threads), "--device", args.device,
                "--precision", args.precision,
            ]  # fmt: skip
            if args.profile:
                cmd.append("--profile")
            env = {"PYTHONPATH": str(args.baseline_src)} if impl == "ours-baseline" else None
            probe = matmul_probe()
            r = run_child(cmd, args.allocator, f"{impl} worker", env)
            r.update(repeat=rep, probe_gflops=probe)
            runs.append(r)
            print(
                f"repeat {rep} {impl:>13}: median {statistics.median(r['wall_s']):.3f} s, "
                f"cpu/wall {r['cpu_per_wall']:.2f}, peak {r['peak_rss_mib']:.0f} MiB, "
                f"probe {probe:.0f} GFLOP/s, {r['allocator']}",
                file=sys.stderr,
            )

    profiles = {r["impl"]: r.pop("profile") for r in runs if "profile" in r}
    result = {
        "benchmark": name,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "setup": setup,
        "impls": impls,
        "machine": machine(runs),
        "settings": {
            k: getattr(args, k)
            for k in ("runs", "warmup", "repeats", "seed", "device", "precision")
        },
        "runs": runs,
        "summary": summarize(runs, impls, setup["gflop"]),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(result, indent=2, allow_nan=False) + "\n")
    for impl, table in profiles.items():
        print(f"\n### profile: {impl}\n\n```\n{table}\n```")
    print(markdown(result))
    print(f"\nwrote {out_path}", file=sys.stderr)


if __name__ == "__main__":
    main()

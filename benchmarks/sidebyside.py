"""What the side-by-side benchmarks share: the matmul probe, the noisy-run flags, timing of
a callable in wall and CPU seconds, peak-RSS bookkeeping, and worker subprocesses run under
a chosen allocator.

The method (docs/benchmarks.md): each implementation runs in its own fresh subprocess, so
its peak RSS is its own; the subprocesses alternate (ours, theirs, theirs, ours, ...) so a
slow spell of the shared host hits both; medians are taken over clean runs; both sides run
under the same allocator.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch


def _allocator_module():
    """wav2vec2.allocator of this checkout, by path: a worker may import the rest of the
    package from another tree (``--baseline-src``) that predates it."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "src" / "wav2vec2" / "allocator.py"
    spec = importlib.util.spec_from_file_location("_bench_allocator", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_allocator = _allocator_module()
TCMALLOC = _allocator.TCMALLOC
allocator_in_use = _allocator.allocator_in_use
preload_env = _allocator.preload_env

# A run whose CPU time per wall second falls below this fraction of the torch thread count
# probably lost a core to the host or to another process: it is flagged as noisy.
NOISY_CPU_FRACTION = 0.75
# ... and so is a run whose matmul probe (taken just before it) is this much below the best.
NOISY_PROBE_FRACTION = 0.8


def matmul_probe(seconds: float = 0.4) -> float:
    """GFLOP/s of a 1024^3 fp32 matmul on torch's threads: a cheap check for a stolen core,
    and the achievable peak that a model's GFLOP/s is compared with."""
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    a @ b
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        n += 1
    return 2 * 1024**3 * n / (time.perf_counter() - start) / 1e9


def timed(fn: Callable[[], Any], warmup: int, repeats: int) -> tuple[list[float], list[float]]:
    """Run ``fn`` warmup + repeats times; the wall and CPU seconds of the timed calls."""
    wall, cpu = [], []
    for i in range(warmup + repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        if i >= warmup:
            wall.append(time.perf_counter() - w0)
            cpu.append(time.process_time() - c0)
    return wall, cpu


def generated_audio(batch: int, samples: int, rate: int, gen: torch.Generator) -> torch.Tensor:
    """Speech-like stand-in: a few random harmonic tones with a slow envelope, plus noise."""
    t = torch.arange(samples) / rate  # seconds
    f0 = 100 + 150 * torch.rand(batch, 1, generator=gen)  # (B, 1) Hz
    harmonics = torch.arange(1, 6)[:, None, None]  # (5, 1, 1)
    tones = (torch.sin(2 * torch.pi * harmonics * f0 * t) / harmonics).sum(0)  # (B, samples)
    phase = 2 * torch.pi * torch.rand(batch, 1, generator=gen)  # (B, 1)
    envelope = 0.5 + 0.5 * torch.sin(2 * torch.pi * 3 * t + phase)  # 3 Hz, syllable-like
    noise = 0.05 * torch.randn(batch, samples, generator=gen)
    return (0.1 * tones * envelope + noise).float()


# -- memory ----------------------------------------------------------------------------------


def reset_peak_rss() -> bool:
    """Reset the kernel's high-water RSS mark (also what ru_maxrss reports) to the current
    RSS, so the peak excludes loading. Linux >= 4.0; False where not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_rss_mib() -> float:
    """This process's peak RSS since start or since :func:`reset_peak_rss`. The kernel's
    VmHWM, not ``ru_maxrss``: a child's ru_maxrss starts at its parent's RSS at fork (the
    benchmarks' parents hold both models), which hid the child's own peak below it."""
    hwm = proc_status_mib("VmHWM")
    if hwm is not None:
        return hwm
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def proc_status_mib(field: str) -> float | None:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024  # kB -> MiB
    return None


# -- worker subprocesses ---------------------------------------------------------------------


def add_allocator_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--allocator",
        choices=["auto", "tcmalloc", "glibc"],
        default="auto",
        help="auto: tcmalloc when installed (Debian libtcmalloc-minimal4), else glibc",
    )


def resolve_allocator(choice: str) -> str:
    if choice == "auto":
        return "tcmalloc" if TCMALLOC.is_file() else "glibc"
    if choice == "tcmalloc" and not TCMALLOC.is_file():
        raise SystemExit(f"{TCMALLOC} not found: apt-get install -y libtcmalloc-minimal4")
    return choice


def child_env(allocator: str) -> dict[str, str]:
    env = preload_env(dict(os.environ), allocator)
    env["WAV2VEC2_NO_TCMALLOC"] = "1"  # a benchmark's child runs under what it was given
    return env


def run_child(
    cmd: list[str], allocator: str, what: str, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Run a benchmark's worker process under ``allocator`` (with ``env`` added to the
    environment); its last ``RESULT {json}`` line is its report (its output is shown if it
    fails)."""
    import json

    proc = subprocess.run(
        cmd, env={**child_env(allocator), **(env or {})}, capture_output=True, text=True
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"{what} failed (exit {proc.returncode})")
    return json.loads(lines[-1][len("RESULT ") :])


def alternation(impls: Sequence[str], repeats: int) -> list[tuple[int, str]]:
    """(repeat, implementation) in run order; which side goes first flips every repeat."""
    order = []
    for rep in range(repeats):
        order += [(rep, impl) for impl in (impls if rep % 2 == 0 else impls[::-1])]
    return order


# -- summaries -------------------------------------------------------------------------------


def flag_noisy(runs: list[dict[str, Any]]) -> None:
    """Set each run's ``noisy`` to the reasons it is suspect (or None): CPU seconds per wall
    second well under the thread count, or a matmul probe well under the session's best."""
    best_probe = max(r["probe_gflops"] for r in runs)
    for r in runs:
        reasons = []
        # (on a GPU the host thread waits for the device: CPU per wall says nothing)
        on_cpu = r.get("device", "cpu") == "cpu"
        if on_cpu and r["cpu_per_wall"] < NOISY_CPU_FRACTION * r["threads"]:
            reasons.append(f"cpu/wall {r['cpu_per_wall']:.2f}")
        if r["probe_gflops"] < NOISY_PROBE_FRACTION * best_probe:
            reasons.append(f"probe {r['probe_gflops']:.0f} GFLOP/s")
        r["noisy"] = ", ".join(reasons) or None


def clean_runs(runs: list[dict[str, Any]], impls: Sequence[str]) -> tuple[list[dict], str]:
    """The clean runs when every implementation has one, else all runs; and which it was."""
    clean = [r for r in runs if not r["noisy"]]
    if all(any(r["impl"] == impl for r in clean) for impl in impls):
        return clean, "clean runs"
    return runs, "all runs (all noisy)"


def paired_ratios(
    runs: list[dict[str, Any]], ours: str, theirs: str, key: str
) -> list[dict[str, Any]]:
    """Per repeat, theirs' median ``key`` over ours' (adjacent subprocesses): less sensitive
    to slow drifts of the host than the overall medians."""
    paired = []
    for rep in sorted({r["repeat"] for r in runs}):
        pair = {r["impl"]: r for r in runs if r["repeat"] == rep}
        if ours in pair and theirs in pair:
            paired.append(
                {
                    "repeat": rep,
                    "ratio": statistics.median(pair[theirs][key])
                    / statistics.median(pair[ours][key]),
                    "noisy": bool(pair[ours]["noisy"] or pair[theirs]["noisy"]),
                }
            )
    return paired


def machine(runs: list[dict[str, Any]]) -> dict[str, Any]:
    import transformers

    return {
        "platform": platform.platform(),
        "processor": platform.processor(),
        "cpus": os.cpu_count(),
        "threads": runs[0]["threads"],
        "allocator": " + ".join(sorted({r["allocator"] for r in runs})),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
    }

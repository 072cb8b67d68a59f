"""Pretraining step time and peak memory: ours against transformers' Wav2Vec2ForPreTraining
and, with ``--fairseq-python``, fairseq's Wav2Vec2Model and wav2vec criterion.

Every side gets the same architecture (our preset, LayerDrop 0, the preset's dropouts), the
same weights (transformers' random init, saved with ``save_pretrained`` and read back into
ours with ``read_hf_dir``; renamed onto fairseq's model by the fairseq reader's table), the
same waveforms, the same time mask and the same distractor indices. A step is forward +
backward + AdamW step in train mode. Before timing, each peer's eval-mode loss of the batch
is checked against ours.

Each implementation runs in its own fresh subprocess, so that its peak RSS is its own, and
the subprocesses alternate (ours, transformers, fairseq, then the reverse, ...) so that a
slow spell of the host hits all. All run under the same allocator (tcmalloc when it is
installed). fairseq runs under the interpreter of its own venv (``make peers``;
benchmarks/fairseq_side.py).

    .venv/bin/python benchmarks/pretrain_step.py --preset small
    .venv/bin/python benchmarks/pretrain_step.py --preset base --batch 4x5 --steps 3 --repeats 3 \
        --fairseq-python .peers-venv/bin/python

Writes a JSON result (default ``benchmarks/results/pretrain_step_<preset>.json``) and prints
a Markdown table. A ratio is a peer's median step time over ours: > 1 means we are faster;
"the faster peer" is the peer with the lower median step time. ``--profile`` adds one
profiled step per implementation (not timed) and prints the operators that take the most CPU
time. ``--precision bf16`` runs every side's forward under CPU bf16 autocast (the trainer's
``precision: bf16``; fast on CPUs with AMX); ``--ours-precision`` sets ours alone, for ours
in bf16 against the peers in fp32.
"""

from __future__ import annotations

import argparse
import json
import math
import os
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
    proc_status_mib,
    reset_peak_rss,
    resolve_allocator,
    run_child,
    timed,
)

PEERS = ("transformers", "fairseq")
ALL_IMPLS = ("ours", *PEERS)


def impls_of(args: argparse.Namespace) -> tuple[str, ...]:
    """The sides this run compares: ours, transformers and, when its venv is given, fairseq."""
    return ("ours", "transformers", *(("fairseq",) if args.fairseq_python else ()))


# -- the shared setup (parent process) -------------------------------------------------------


def benchmark_config(preset: str):
    """Our preset with LayerDrop 0: skipped blocks make step times vary (NOTES-peers)."""
    from wav2vec2.config import preset as get_preset

    return get_preset(preset).with_overrides(**{"transformer.layerdrop": 0.0})


def prepare(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Write the weights and the batch to ``workdir``, check that every implementation
    computes the same eval-mode loss on them, and describe the setup."""
    task = prepare_finetune if args.task == "finetune" else prepare_pretrain
    setup, cfg, ours = task(args, workdir)
    if args.fairseq_python:
        check_fairseq(args, workdir, setup, cfg, ours)
    return setup


def check_fairseq(args: argparse.Namespace, workdir: Path, setup: dict[str, Any], cfg, ours):
    """fairseq's options and our weights for its parity child, which renames the weights
    onto fairseq's model (saved for the timing children) and computes its eval-mode loss;
    its results go into ``setup``."""
    import fairseq_side

    fairseq_side.write_inputs(workdir, cfg, ours.state_dict())
    repo = Path(__file__).resolve().parents[1]
    cmd = [args.fairseq_python, str(Path(fairseq_side.__file__)), "parity", str(workdir)]
    got = run_child(cmd, args.allocator, "fairseq parity", env=fairseq_side.child_env(repo))
    setup["parameters"]["fairseq"] = got["parameters"]
    setup["fairseq"] = {"fairseq": got["fairseq"], "torch": got["torch"]}
    for key, value in got.items():
        if key.startswith("eval_"):
            entry = setup.setdefault(key, {"ours": None, "abs_diff": {}})
            entry["fairseq"] = value
            if entry["ours"] is not None:
                entry["abs_diff"]["fairseq"] = abs(value - entry["ours"])


def prepare_pretrain(args: argparse.Namespace, workdir: Path):
    """Transformers' weights and the batch (waveforms, mask, negatives); the eval-mode
    losses of ours and transformers. Returns (setup, our config, our model)."""
    import transformers

    from wav2vec2.interop.huggingface import config_to_hf
    from wav2vec2.loading import load_model
    from wav2vec2.losses import contrastive_loss, pretraining_loss
    from wav2vec2.models.masking import sample_masks
    from wav2vec2.models.negatives import sample_negatives, to_flat_time_indices

    cfg = benchmark_config(args.preset)
    torch.manual_seed(args.seed)
    hf = transformers.Wav2Vec2ForPreTraining(transformers.Wav2Vec2Config(**config_to_hf(cfg, None)))
    hf.save_pretrained(workdir / "model")
    ours = load_model(str(workdir / "model"))
    if ours.cfg != cfg:
        raise SystemExit("the config read back from transformers' directory differs from ours")

    batch, seconds = args.batch
    samples = int(round(seconds * cfg.sample_rate))
    gen = torch.Generator().manual_seed(args.seed)
    waveforms = generated_audio(batch, samples, cfg.sample_rate, gen)  # (B, samples)
    frames = cfg.feature_encoder.num_frames(samples)
    mask, _ = sample_masks(cfg.masking, batch, frames, None, generator=gen)  # (B, T) bool
    negatives = sample_negatives(mask, cfg.pretraining.num_negatives, gen)  # (M, K)
    torch.save(
        {
            "waveforms": waveforms,
            "mask": mask,
            "negatives": negatives,
            "hf_negatives": to_flat_time_indices(mask, negatives),  # (B, T, K)
        },
        workdir / "batch.pt",
    )

    # Same weights and inputs -> same contrastive loss (eval mode: no dropout, no Gumbel noise).
    with torch.no_grad():
        ref = hf.eval()(
            waveforms,
            mask_time_indices=mask,
            sampled_negative_indices=to_flat_time_indices(mask, negatives),
        )
        out = ours.eval().pretrain(waveforms, None, mask_time=mask, negatives=negatives)
    ours_loss = float(contrastive_loss(out.logits))
    parity = abs(float(ref.contrastive_loss) - ours_loss)
    setup = {
        "preset": args.preset,
        "config": cfg.to_dict(),
        "batch": {"utterances": batch, "seconds": seconds, "samples": samples, "frames": frames},
        "masked_steps": int(mask.sum()),
        "num_negatives": cfg.pretraining.num_negatives,
        "parameters": {
            "ours": sum(p.numel() for p in ours.parameters()),
            "transformers": sum(p.numel() for p in hf.parameters()),
        },
        "eval_contrastive_loss": {
            "ours": ours_loss,
            "transformers": float(ref.contrastive_loss),
            "abs_diff": {"transformers": parity},
        },
        # contrastive + weighted diversity and feature penalty, as fairseq's criterion sums
        # them (transformers has no feature penalty: not compared with it)
        "eval_total_loss": {
            "ours": float(pretraining_loss(out, cfg.pretraining).total),
            "abs_diff": {},
        },
    }
    return setup, cfg, ours


# -- one implementation, timed (child process) -----------------------------------------------


# -- fine-tuning (--task finetune) -----------------------------------------------------------


def finetune_config(preset: str):
    """Our preset as a CTC model (32 letters), fine-tuned as the recipes do (feature encoder
    frozen: grad_scale 0), with LayerDrop and both SpecAugment masks off: transformers'
    Wav2Vec2ForCTC draws its masks inside forward, so only no masks are the same masks."""
    from wav2vec2.config import preset as get_preset

    return get_preset(preset).with_overrides(
        **{"transformer.layerdrop": 0.0, "vocab_size": 32, "quantizer": None,
           "pretraining": None, "masking.time_prob": 0.0, "masking.channel_prob": 0.0,
           "feature_encoder.grad_scale": 0.0}
    )  # fmt: skip


def prepare_finetune(args: argparse.Namespace, workdir: Path):
    """transformers' Wav2Vec2ForCTC weights, the waveforms and random letter labels (about
    one per 4 frames); both sides' CTC loss (sum, blank 0) on them in eval mode. Returns
    (setup, our config, our model)."""
    import transformers

    from wav2vec2.interop.huggingface import config_to_hf
    from wav2vec2.loading import load_model

    cfg = finetune_config(args.preset)
    torch.manual_seed(args.seed)
    hf = transformers.Wav2Vec2ForCTC(transformers.Wav2Vec2Config(**config_to_hf(cfg, None)))
    hf.config.pad_token_id = 0  # the blank, as ours
    hf.save_pretrained(workdir / "model")
    ours = load_model(str(workdir / "model"))
    batch, seconds = args.batch
    samples = int(round(seconds * cfg.sample_rate))
    gen = torch.Generator().manual_seed(args.seed)
    waveforms = generated_audio(batch, samples, cfg.sample_rate, gen)
    frames = cfg.feature_encoder.num_frames(samples)
    labels = torch.randint(1, cfg.vocab_size, (batch, frames // 4), generator=gen)
    torch.save({"waveforms": waveforms, "labels": labels}, workdir / "batch.pt")
    with torch.no_grad():
        ref = float(hf.eval()(waveforms, labels=labels).loss)
        mine = float(ctc_loss_of(ours.eval().ctc(waveforms).logits, labels))
    setup = {
        "task": "finetune",
        "preset": args.preset,
        "config": cfg.to_dict(),
        "batch": {"utterances": batch, "seconds": seconds, "samples": samples, "frames": frames},
        "labels_per_utterance": labels.shape[1],
        "parameters": {
            "ours": sum(p.numel() for p in ours.parameters()),
            "transformers": sum(p.numel() for p in hf.parameters()),
        },
        "eval_ctc_loss": {
            "ours": mine,
            "transformers": ref,
            "abs_diff": {"transformers": abs(mine - ref)},
        },
    }
    return setup, cfg, ours


def ctc_loss_of(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """CTC loss summed over the batch, blank 0, every frame and label valid (our task's)."""
    log_probs = torch.log_softmax(logits.float(), dim=-1).transpose(0, 1)  # (T, B, V)
    b, t = logits.shape[:2]
    return torch.nn.functional.ctc_loss(
        log_probs, labels, torch.full((b,), t), torch.full((b,), labels.shape[1]),
        blank=0, reduction="sum", zero_infinity=True,
    )  # fmt: skip


def build_finetune(
    impl: str, workdir: Path, batch: dict[str, torch.Tensor], feature_cache: bool = False
):
    """A fine-tuning step's model and loss: the feature encoder frozen on both sides.
    ``feature_cache`` (ours only): the frozen encoder's output comes from the fine-tuning
    trainer's cache (``train.feature_cache_mib``), as in epoch 2 and later of a run whose
    batches all fit: computed in the first (warmup) step, then looked up by the batch's
    digest in every step."""
    if impl == "ours":
        from wav2vec2.loading import load_model
        from wav2vec2.training.feature_cache import FeatureCache

        model = load_model(str(workdir / "model"))
        for p in model.feature_encoder.parameters():
            p.requires_grad_(False)  # as training/finetune.py does
        cache = FeatureCache(1024) if feature_cache else None
        waveforms = batch["waveforms"]

        def loss_fn() -> torch.Tensor:
            latents = cache.latents(model.feature_encoder, waveforms, None) if cache else None
            return ctc_loss_of(model.ctc(waveforms, latents=latents).logits, batch["labels"])

        return model, loss_fn, {"feature_cache": feature_cache}
    import transformers

    model = transformers.Wav2Vec2ForCTC.from_pretrained(workdir / "model")
    model.freeze_feature_encoder()

    def hf_loss() -> torch.Tensor:
        return model(batch["waveforms"], labels=batch["labels"]).loss

    return model, hf_loss, {"attn_implementation": model.config._attn_implementation}


def build(
    impl: str,
    workdir: Path,
    batch: dict[str, torch.Tensor],
    task: str = "pretrain",
    feature_cache: bool = False,
):
    """The model and a closure computing the training loss of the fixed batch."""
    if impl == "fairseq":  # in fairseq's venv
        import fairseq_side

        return fairseq_side.build(workdir, batch, task, ctc_loss_of)
    if task == "finetune":
        return build_finetune(impl, workdir, batch, feature_cache)
    if impl == "ours":
        from wav2vec2.loading import load_model
        from wav2vec2.losses import pretraining_loss

        model = load_model(str(workdir / "model"))
        gen = torch.Generator().manual_seed(0)  # dropout noise is global; Gumbel noise is here

        def loss_fn() -> torch.Tensor:
            out = model.pretrain(
                batch["waveforms"], None, mask_time=batch["mask"],
                negatives=batch["negatives"], generator=gen,
            )  # fmt: skip
            return pretraining_loss(out, model.cfg.pretraining).total

        return model, loss_fn, {}
    import transformers

    model = transformers.Wav2Vec2ForPreTraining.from_pretrained(workdir / "model")

    def loss_fn() -> torch.Tensor:
        out = model(
            batch["waveforms"],
            mask_time_indices=batch["mask"],
            sampled_negative_indices=batch["hf_negatives"],
        )
        return out.loss

    return model, loss_fn, {"attn_implementation": model.config._attn_implementation}


def worker(args: argparse.Namespace) -> None:
    workdir = Path(args.workdir)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    batch = torch.load(workdir / "batch.pt")
    model, loss_fn, extra = build(args.worker, workdir, batch, args.task, args.feature_cache)
    if args.worker == "ours" and args.checkpointing:
        model.encoder.activation_checkpointing = True  # train.activation_checkpointing
    model.train()
    trained = [p for p in model.parameters() if p.requires_grad]  # fine-tuning: no encoder
    # Each side's trainer's AdamW: the fused kernel in ours and in transformers' Trainer
    # (its default since torch 2.8), the per-tensor loop in fairseq's.
    fused = args.worker in ("ours", "transformers")
    optimizer = torch.optim.AdamW(
        trained, lr=5e-4, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.01, fused=fused
    )
    setup_rss = proc_status_mib("VmRSS")
    peak_reset = reset_peak_rss()

    # not wav2vec2.inference.PRECISIONS: this worker also runs in fairseq's venv, which
    # imports nothing of ours at module level
    dtype = {"fp32": None, "bf16": torch.bfloat16}[args.precision]

    def step() -> float:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=dtype, enabled=dtype is not None):
            loss = loss_fn()
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    losses: list[float] = []
    wall, cpu = timed(lambda: losses.append(step()), args.warmup, args.steps)

    finite = [math.isfinite(x) for x in losses]
    result: dict[str, Any] = {
        "impl": args.worker,
        "precision": args.precision,
        "step_s": wall,
        "cpu_s": cpu,
        "cpu_per_wall": sum(cpu) / sum(wall),
        # Per step, warmup included; null where the loss was NaN or infinite (strict JSON).
        "losses": [x if ok else None for x, ok in zip(losses, finite)],
        "first_nonfinite_step": None if all(finite) else finite.index(False),
        "setup_rss_mib": setup_rss,
        # After the reset it is the peak since training began.
        "peak_rss_mib": peak_rss_mib(),
        "peak_is_training_only": peak_reset,
        "threads": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
        "allocator": allocator_in_use(),
        **extra,
    }
    if args.profile:
        result["profile"] = profile_step(step, args.profile_rows)
    print("RESULT " + json.dumps(result))


def profile_step(step, rows: int) -> str:
    from torch.profiler import ProfilerActivity, profile, record_function

    with profile(activities=[ProfilerActivity.CPU], record_shapes=False) as prof:
        with record_function("step"):
            step()
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows)


# -- orchestration (parent process) ----------------------------------------------------------


def run_worker(impl: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    python = args.fairseq_python if impl == "fairseq" else sys.executable
    cmd = [
        python, __file__, "--worker", impl, "--workdir", str(workdir),
        "--steps", str(args.steps), "--warmup", str(args.warmup), "--seed", str(args.seed),
        "--threads", str(args.threads), "--task", args.task,
        "--precision", precision_of(impl, args),
    ]  # fmt: skip
    if args.checkpointing:
        cmd.append("--checkpointing")
    if args.feature_cache:
        cmd.append("--feature-cache")
    if args.profile:
        cmd += ["--profile", "--profile-rows", str(args.profile_rows)]
    return run_child(cmd, args.allocator, f"{impl} worker")


def precision_of(impl: str, args: argparse.Namespace) -> str:
    return (args.ours_precision or args.precision) if impl == "ours" else args.precision


def summarize(runs: list[dict[str, Any]], impls: tuple[str, ...]) -> dict[str, Any]:
    flag_noisy(runs)
    chosen, over = clean_runs(runs, impls)
    out: dict[str, Any] = {"medians_over": over}
    for impl in impls:
        mine = [r for r in chosen if r["impl"] == impl]
        steps = [s for r in mine for s in r["step_s"]]
        every = [r for r in runs if r["impl"] == impl]
        out[impl] = {
            "median_step_s": statistics.median(steps),
            "min_step_s": min(steps),
            # CPU seconds per step (all threads): less sensitive than wall time to other
            # processes sharing the cores, though not immune (caches, memory bandwidth).
            "median_cpu_step_s": statistics.median(c for r in mine for c in r["cpu_s"]),
            "timed_steps": len(steps),
            "peak_rss_mib": max(r["peak_rss_mib"] for r in every),
            "setup_rss_mib": max(r["setup_rss_mib"] for r in every),
            "median_cpu_per_wall": statistics.median(r["cpu_per_wall"] for r in every),
        }
    ours, peers = out["ours"], impls[1:]
    # Per peer: its time over ours (> 1: we are faster), our peak RSS over its.
    out["versus"] = {
        peer: {
            "ratio": out[peer]["median_step_s"] / ours["median_step_s"],
            # The fastest step is the one least disturbed by other processes on a shared host.
            "min_ratio": out[peer]["min_step_s"] / ours["min_step_s"],
            "cpu_ratio": out[peer]["median_cpu_step_s"] / ours["median_cpu_step_s"],
            "paired_ratios": paired_ratios(runs, "ours", peer, "step_s"),
            "peak_rss_ours_over_theirs": ours["peak_rss_mib"] / out[peer]["peak_rss_mib"],
        }
        for peer in peers
    }
    # Issue 18's targets are against the faster peer (step rate) and its peak memory; the
    # lower of the peers' peaks is given too.
    out["faster_peer"] = min(peers, key=lambda p: out[p]["median_step_s"])
    out["peak_rss_ours_over_lowest_peer"] = ours["peak_rss_mib"] / min(
        out[p]["peak_rss_mib"] for p in peers
    )
    return out


def markdown(result: dict[str, Any]) -> str:
    s, b = result["summary"], result["setup"]["batch"]
    impls = tuple(result["settings"]["implementations"])
    what = (
        f"{result['setup']['masked_steps']} masked"
        if "masked_steps" in result["setup"]
        else f"{result['setup']['labels_per_utterance']} labels each"
    )
    lines = [
        f"{result['setup'].get('task', 'pretrain').capitalize()} step, preset "
        f"`{result['setup']['preset']}`, {b['utterances']} x {b['seconds']:g} s "
        f"({b['frames']} frames, {what}), {result['machine']['threads']} threads, "
        f"{result['machine']['allocator']}; medians over {s['medians_over']}; precision "
        + ", ".join(f"{k} {v}" for k, v in result["settings"].get("precision", {}).items()),
        "",
    ]
    if result["settings"].get("ours_feature_cache"):
        lines += [
            "**Ours with the feature cache** (`--feature-cache`): its frozen feature encoder's "
            "output is reused, the steady state of fine-tuning's epoch 2 onwards; the peers "
            "run their encoders every step. Not a like-for-like step.",
            "",
        ]
    lines += [
        "| implementation | median step (s) | min step (s) | CPU s/step | timed steps "
        "| peak RSS, training (MiB) | RSS after setup (MiB) | CPU/wall |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for impl in impls:
        r = s[impl]
        lines.append(
            f"| {impl} | {r['median_step_s']:.3f} | {r['min_step_s']:.3f} "
            f"| {r['median_cpu_step_s']:.3f} | {r['timed_steps']} "
            f"| {r['peak_rss_mib']:.0f} | {r['setup_rss_mib']:.0f} "
            f"| {r['median_cpu_per_wall']:.2f} |"
        )
    lines.append("")
    for peer, v in s["versus"].items():
        # A star marks a repeat where either run was flagged as noisy.
        paired = ", ".join(
            f"{x['ratio']:.2f}{'*' if x['noisy'] else ''}" for x in v["paired_ratios"]
        )
        lines.append(
            f"- Step time {peer} / ours: **{v['ratio']:.2f}** (per repeat: {paired}); "
            f"fastest step: {v['min_ratio']:.2f}; CPU time: {v['cpu_ratio']:.2f}; "
            f"peak RSS ours / {peer}: {v['peak_rss_ours_over_theirs']:.2f}."
        )
    if len(s["versus"]) > 1:
        fast = s["faster_peer"]
        lines.append(
            f"- Against the faster peer ({fast}): step rate ratio "
            f"**{s['versus'][fast]['ratio']:.2f}** (issue 18: >= 1.5), peak RSS ours / "
            f"{fast}: **{s['versus'][fast]['peak_rss_ours_over_theirs']:.2f}**, ours / the "
            f"lowest peer peak: {s['peak_rss_ours_over_lowest_peer']:.2f} (issue 18: <= 0.7)."
        )
    lines += [
        "",
        "| repeat | implementation | median step (s) | CPU/wall | probe (GFLOP/s) | noisy |",
        "|---|---|---|---|---|---|",
    ]
    for r in result["runs"]:
        lines.append(
            f"| {r['repeat']} | {r['impl']} | {statistics.median(r['step_s']):.3f} "
            f"| {r['cpu_per_wall']:.2f} | {r['probe_gflops']:.0f} | {r['noisy'] or ''} |"
        )
    for r in result["runs"]:
        if r.get("first_nonfinite_step") is not None:
            lines.append(
                f"\nNote: {r['impl']}'s loss became non-finite at step "
                f"{r['first_nonfinite_step']} (0-based, warmup included); later steps ran on "
                "NaN weights."
            )
    return "\n".join(lines)


def parse_batch(text: str) -> tuple[int, float]:
    try:
        b, s = text.lower().split("x")
        return int(b), float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected BxS, e.g. 4x5, got {text!r}") from None


def main(task: str = "pretrain") -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="small", choices=["small", "base", "large", "large_lv60k"])
    p.add_argument("--task", choices=["pretrain", "finetune"], default=task)
    p.add_argument(
        "--checkpointing", action="store_true", help="ours with activation checkpointing"
    )
    p.add_argument(
        "--feature-cache",
        action="store_true",
        help="finetune, ours only: the frozen feature encoder's output reused from the "
        "trainer's feature cache, the steady state of epoch 2 and later (not a like-for-like "
        "comparison: the peers have no such cache)",
    )
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                   help="every side's forward under CPU autocast in this precision")  # fmt: skip
    p.add_argument("--ours-precision", choices=["fp32", "bf16"],
                   help="ours only (default: --precision)")  # fmt: skip
    p.add_argument("--batch", type=parse_batch, default=(4, 5.0), help="utterances x seconds")
    p.add_argument("--steps", type=int, default=5, help="timed steps per subprocess")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps per subprocess")
    p.add_argument("--repeats", type=int, default=3, help="subprocesses per implementation")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    add_allocator_arg(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, help="JSON result (default benchmarks/results/...)")
    p.add_argument("--profile", action="store_true", help="print a profiled step of each")
    p.add_argument("--profile-rows", type=int, default=25)
    p.add_argument(
        "--fairseq-python",
        metavar="PATH",
        help="the python of a venv with fairseq (scripts/install-peers.sh, `make peers`): "
        "adds fairseq as a third side",
    )
    p.add_argument("--worker", choices=ALL_IMPLS, help=argparse.SUPPRESS)
    p.add_argument("--workdir", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.feature_cache and args.task != "finetune":
        p.error("--feature-cache needs --task finetune")
    if args.worker:
        worker(args)
        return
    if args.fairseq_python:
        exe = Path(args.fairseq_python)
        if not (exe.is_file() and os.access(exe, os.X_OK)):
            p.error(f"--fairseq-python {exe}: not an executable (make peers?)")
        if args.task == "pretrain" and args.precision == "bf16":
            # measured 2026-12-07 (docs/benchmarks.md): fairseq's apply_mask writes its fp32
            # mask embedding into the bf16 features, an index_put dtype error
            p.error("fairseq cannot run bf16 autocast pretraining on the CPU: leave out "
                    "--fairseq-python, or use --precision fp32")  # fmt: skip
    impls = impls_of(args)

    args.allocator = resolve_allocator(args.allocator)
    if args.threads:
        torch.set_num_threads(args.threads)
    tags = ("_feature_cache" if args.feature_cache else "") + (
        "" if {args.precision, args.ours_precision} <= {"fp32", None}
        else f"_{args.precision}" + (f"_ours_{args.ours_precision}" if args.ours_precision else "")
    )  # fmt: skip
    name = f"{args.task}_step_{args.preset}{tags}.json"
    out_path = args.out or Path(__file__).parent / "results" / name

    with tempfile.TemporaryDirectory(prefix="w2v2-bench-") as tmp:
        workdir = Path(tmp)
        setup = prepare(args, workdir)
        kind = "ctc" if args.task == "finetune" else "contrastive"
        losses = setup[f"eval_{kind}_loss"]
        print(
            f"setup: {setup['parameters']['ours'] / 1e6:.2f}M parameters, eval {kind} "
            f"loss ours {losses['ours']:.4f} vs "
            + ", ".join(f"{peer} {losses[peer]:.4f}" for peer in impls[1:]),
            file=sys.stderr,
        )
        runs = []
        for rep, impl in alternation(impls, args.repeats):
            probe = matmul_probe()
            r = run_worker(impl, args, workdir)
            r.update(repeat=rep, probe_gflops=probe)
            runs.append(r)
            print(
                f"repeat {rep} {impl:>12}: median {statistics.median(r['step_s']):.3f} s, "
                f"cpu/wall {r['cpu_per_wall']:.2f}, peak {r['peak_rss_mib']:.0f} MiB, "
                f"probe {probe:.0f} GFLOP/s, {r['allocator']}",
                file=sys.stderr,
            )

    profiles = {r["impl"]: r.pop("profile") for r in runs if "profile" in r}
    result = {
        "benchmark": f"{args.task}_step",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "setup": setup,
        "step": "forward + backward + AdamW(lr 5e-4, betas (0.9, 0.98), eps 1e-6, wd 0.01; "
        "fused in ours and transformers, as their trainers run it), train mode",
        "machine": {
            **machine(runs),
            "interop_threads": runs[0]["interop_threads"],
            "attn_implementation": next(
                (r["attn_implementation"] for r in runs if "attn_implementation" in r), None
            ),
            # fairseq's venv: its fairseq and torch versions
            **({"fairseq_venv": setup["fairseq"]} if "fairseq" in setup else {}),
        },
        "settings": {
            # Ours only: the frozen encoder's output reused (fine-tuning's epoch 2 onwards).
            "ours_feature_cache": args.feature_cache,
            "precision": {impl: precision_of(impl, args) for impl in impls},
            "steps": args.steps,
            "warmup": args.warmup,
            "repeats": args.repeats,
            "seed": args.seed,
            "implementations": list(impls),
        },
        "runs": runs,
        "summary": summarize(runs, impls),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(result, indent=2, allow_nan=False) + "\n")
    for impl, table in profiles.items():
        print(f"\n### profile of one step: {impl}\n\n```\n{table}\n```")
    print(markdown(result))
    print(f"\nwrote {out_path}", file=sys.stderr)


if __name__ == "__main__":
    main()

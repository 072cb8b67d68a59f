"""Stage 6 of the low-resource experiment: the table, the curves and the best model.

Writes into the report folder: ``results.md`` (a table like the paper's Table 1: labels x
system x decoding, test WER and CER with 95 % bootstrap intervals), ``results.json`` (every
number, each run's config and wall-clock), and PNGs: the pretraining's validation
contrastive accuracy and code perplexity against updates, each label's fine-tuning dev WER
against updates, test WER against labeled minutes, and the codeword-letter heatmap.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
from grid import MINUTES, SYSTEMS  # noqa: E402

from wav2vec2.atomic import atomic_write, write_text_atomic  # noqa: E402
from wav2vec2.training.metrics import LOG_FILE, read_log  # noqa: E402

NAMES = {"pretrained": "pretrained", "scratch": "from scratch", "probe": "frozen + linear probe"}
DECODINGS = (("greedy", "greedy"), ("lm", "4-gram"))


def _pct(interval: dict) -> str:
    v, lo, hi = (100 * interval[k] for k in ("value", "low", "high"))
    return f"{v:.1f} [{lo:.1f}, {hi:.1f}]"


def table(results: dict[str, dict], labels: tuple[str, ...]) -> str:
    """Markdown: one row per labels x system, WER and CER (test, %) per decoding."""
    head = "| labels | system | " + " | ".join(
        f"{d} WER | {d} CER" for _, d in DECODINGS
    ) + " |"  # fmt: skip
    lines = [head, "|" + "---|" * (2 + 2 * len(DECODINGS))]
    for label in labels:
        for system in SYSTEMS:
            r = results.get(f"{label}_{system}")
            if r is None:
                cells = ["pending"] * (2 * len(DECODINGS))
            else:
                cells = [_pct(r["test"][key][m]) for key, _ in DECODINGS for m in ("wer", "cer")]
            lines.append(f"| {label} | {NAMES[system]} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=100, format="png"))
    plt.close(fig)
    return path


def plot_pretraining(pretrain_dir: Path, path: Path) -> Path | None:
    """Validation contrastive accuracy and code perplexity against updates (train beside)."""
    log = pretrain_dir / LOG_FILE
    if not log.is_file():
        return None
    records = read_log(log)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, key, title in (
        (axes[0], "accuracy", "contrastive accuracy"),
        (axes[1], "code_perplexity", "code perplexity"),
    ):
        for split, style in (("train", {"alpha": 0.35}), ("valid", {"marker": "o"})):
            pts = [(r["update"], r[key]) for r in records if r.get("split") == split and key in r]
            if pts:
                xs, ys = zip(*pts)
                ax.plot(xs, ys, label=split, **style)
        ax.set_title(f"pretraining: {title}")
        ax.set_xlabel("update")
        ax.grid(alpha=0.3)
        ax.legend()
    return _save(fig, path)


def plot_dev_wer(finetune_dir: Path, labels: tuple[str, ...], path: Path) -> Path:
    """Dev WER (the validation sample) against updates, one panel per label."""
    fig, axes = plt.subplots(1, len(labels), figsize=(5 * len(labels), 4), squeeze=False)
    for ax, label in zip(axes[0], labels):
        for system in SYSTEMS:
            log = finetune_dir / f"{label}_{system}" / LOG_FILE
            if not log.is_file():
                continue
            pts = [
                (r["update"], 100 * r["wer"]) for r in read_log(log) if r.get("split") == "valid"
            ]
            if pts:
                xs, ys = zip(*pts)
                ax.plot(xs, ys, marker="o", label=NAMES[system])
        ax.set_title(f"fine-tuning on {label}: dev WER (greedy)")
        ax.set_xlabel("update")
        ax.set_ylabel("WER %")
        ax.grid(alpha=0.3)
        ax.legend()
    return _save(fig, path)


def plot_wer_vs_minutes(results: dict[str, dict], labels: tuple[str, ...], path: Path) -> Path:
    """Test WER against labeled minutes (log scale), with the bootstrap intervals."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for system in SYSTEMS:
        for key, decoding in DECODINGS:
            pts = [
                (MINUTES[label], results[f"{label}_{system}"]["test"][key]["wer"])
                for label in labels
                if f"{label}_{system}" in results
            ]
            if not pts:
                continue
            xs = [x for x, _ in pts]
            ys = [100 * iv["value"] for _, iv in pts]
            err = [
                [100 * (iv["value"] - iv["low"]) for _, iv in pts],
                [100 * (iv["high"] - iv["value"]) for _, iv in pts],
            ]
            ax.errorbar(
                xs, ys, yerr=err, marker="o", capsize=3, label=f"{NAMES[system]}, {decoding}",
                linestyle="-" if key == "lm" else "--",
            )  # fmt: skip
    ax.set_xscale("log")
    ax.set_xlabel("labeled minutes")
    ax.set_ylabel("test WER % (95 % bootstrap interval)")
    ax.set_title("test WER against labeled data")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return _save(fig, path)


def write_report(
    report_dir: Path,
    results: dict[str, dict],
    labels: tuple[str, ...],
    pretrain_dir: Path,
    finetune_dir: Path,
    extra: dict,
    extra_plots: tuple[Path, ...] = (),
) -> Path:
    """results.md, results.json and the curves into ``report_dir``; returns results.md."""
    report_dir.mkdir(parents=True, exist_ok=True)
    plots = [
        plot_pretraining(pretrain_dir, report_dir / "pretraining.png"),
        plot_dev_wer(finetune_dir, labels, report_dir / "finetune_dev_wer.png"),
        plot_wer_vs_minutes(results, labels, report_dir / "wer_vs_minutes.png"),
        *extra_plots,
    ]
    configs = {name: json.loads((finetune_dir / name / "run.json").read_text()) for name in results}
    write_text_atomic(
        report_dir / "results.json",
        json.dumps({**extra, "runs": results, "run_configs": configs}, indent=2) + "\n",
    )
    md = [
        "# Low-resource results (test speakers; WER and CER in %, [95 % bootstrap interval])",
        "",
        table(results, labels),
        "4-gram: lexicon beam search with the corpus's word 4-gram, weights tuned on dev.",
        "",
        *(f"![{p.stem}]({p.name})" for p in plots if p is not None),
    ]
    write_text_atomic(report_dir / "results.md", "\n".join(md) + "\n")
    return report_dir / "results.md"


def best_run(results: dict[str, dict]) -> str:
    """The run with the lowest dev WER with the 4-gram (dev only: test picks nothing)."""
    return min(results, key=lambda n: min(p["wer"] for p in results[n]["lm_tuning"]["dev_wer"]))


def export_model(checkpoint: str | Path, dest: Path) -> Path:
    """A checkpoint's model as a plain model directory (config, weights, vocabulary), the
    format ``wav2vec2 transcribe`` and ``evaluate`` take."""
    from wav2vec2.checkpoint.model_dir import save_model_dir
    from wav2vec2.loading import build_model, read_checkpoint

    loaded = read_checkpoint(checkpoint)
    return save_model_dir(build_model(loaded), dest, loaded.vocab)


def codeword_analysis(
    corpus: Path, pretrained: Path, model: Path, utterances: int, seed: int, plot: Path
) -> dict:
    """Codeword-letter co-occurrence on the first ``utterances`` dev utterances."""
    from dataclasses import asdict

    import codewords

    from wav2vec2.evaluation import labeled_split
    from wav2vec2.inference import Wav2Vec2Inference

    paths, refs = labeled_split(corpus, "dev")
    encoder = Wav2Vec2Inference.from_pretrained(pretrained)
    engine = Wav2Vec2Inference.from_pretrained(model)
    counts = codewords.count(encoder, engine, list(zip(paths, refs))[:utterances])
    info = codewords.information(counts, seed)
    codewords.plot_heatmap(counts, info, plot)
    return {**asdict(info), "utterances": min(utterances, len(paths)), "plot": plot.name}


def write_all(out: Path, report_dir: Path, grid, results: dict[str, dict], pretrained) -> Path:
    """Stage 6: the best model, the codeword analysis, the table and the curves."""
    from dataclasses import asdict

    best = best_run(results)
    model_dir = export_model(results[best]["model"], out / "best_model")
    print(f"best model (lowest dev WER with the 4-gram: {best}): {model_dir}")
    report_dir.mkdir(parents=True, exist_ok=True)
    heatmap = report_dir / "codewords.png"
    analysis = codeword_analysis(
        out / "corpus", Path(pretrained), model_dir, grid.codeword_utterances, grid.seed, heatmap
    )
    print(
        f"codeword-letter mutual information {analysis['mutual_information']:.2f} bits "
        f"(shuffled {analysis['shuffled_mutual_information']:.2f}; H(letter) "
        f"{analysis['letter_entropy']:.2f})"
    )
    wall = out / "wall_clock.json"
    extra = {
        "best_run": best,
        "best_model": str(model_dir),
        "pretrained_checkpoint": str(pretrained),
        "grid": asdict(grid),
        "plan": json.loads((out / "plan.json").read_text()),
        "wall_clock_seconds": json.loads(wall.read_text()) if wall.is_file() else {},
        "codewords": analysis,
    }
    return write_report(
        report_dir, results, grid.labels, out / "pretrain", out / "finetune", extra, (heatmap,)
    )

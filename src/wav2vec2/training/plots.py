"""PNG plots of a run's curves, from its JSONL log."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

from wav2vec2.atomic import atomic_write  # noqa: E402
from wav2vec2.errors import Wav2Vec2Error  # noqa: E402
from wav2vec2.training.metrics import LOG_FILE, read_log  # noqa: E402

# (file name, title, metrics); each metric is drawn for train and valid when logged.
PANELS = (
    ("loss.png", "Loss per masked step / per sample (nats)", ("loss", "contrastive")),
    ("accuracy.png", "Contrastive accuracy", ("accuracy",)),
    ("perplexity.png", "Codebook perplexity", ("code_perplexity", "prob_perplexity")),
    ("diversity.png", "Diversity loss and feature penalty", ("diversity", "feature_penalty")),
    ("wer.png", "Word / character error rate", ("wer", "cer")),
    ("learning_rate.png", "Learning rate", ("lr",)),
    ("temperature.png", "Gumbel temperature", ("temperature",)),
    ("grad_norm.png", "Gradient norm", ("grad_norm",)),
    ("throughput.png", "Throughput (audio seconds per second)", ("audio_seconds_per_second",)),
)


def plot_run(run_dir: str | Path) -> list[Path]:
    """Write RUN_DIR/plots/*.png for every panel with data; return the written paths."""
    run_dir = Path(run_dir)
    log = run_dir / LOG_FILE
    if not log.is_file():
        raise Wav2Vec2Error(f"no {LOG_FILE}: not a training run directory", run_dir)
    records = read_log(log)
    out_dir = run_dir / "plots"
    out_dir.mkdir(exist_ok=True)
    written = []
    for name, title, keys in PANELS:
        series = []
        for split in ("train", "valid"):
            rows = [r for r in records if r.get("split") == split]
            for key in keys:
                points = [
                    (r["update"], r[key]) for r in rows if isinstance(r.get(key), int | float)
                ]
                if points:
                    series.append((f"{split} {key}", points))
        if not series:
            continue
        fig, ax = plt.subplots(figsize=(7, 4))
        for label, points in series:
            xs, ys = zip(*points)
            ax.plot(xs, ys, label=label, marker="o" if len(xs) < 30 else None, markersize=3)
        ax.set_title(title)
        ax.set_xlabel("update")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        path = out_dir / name
        atomic_write(path, lambda tmp, fig=fig: fig.savefig(tmp, dpi=100, format="png"))
        plt.close(fig)
        written.append(path)
    return written

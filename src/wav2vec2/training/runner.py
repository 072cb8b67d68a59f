"""Set up a run directory, its data and model, and hand them to the trainer.

``RUN_DIR/run.json`` records what the run is. Re-running the same command on an existing
RUN_DIR resumes from its newest checkpoint; changing anything but ``max_updates`` (which may
grow to train longer) and ``feature_cache_mib`` (which changes no result) is refused, so a
resumed run is the run that was started.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from wav2vec2.atomic import write_text_atomic
from wav2vec2.data.dataset import AudioDataset
from wav2vec2.data.loader import build_loader
from wav2vec2.data.sampler import BucketBatchSampler
from wav2vec2.errors import Wav2Vec2Error
from wav2vec2.models.wav2vec2 import Wav2Vec2Model
from wav2vec2.training.config import RunConfig
from wav2vec2.training.data_guard import check_audio_root
from wav2vec2.training.distributed import DistEnv, init_from_env, shutdown
from wav2vec2.training.tasks import Task
from wav2vec2.training.trainer import DataSource, FitResult, Trainer, resolve_device
from wav2vec2.vocab import Vocabulary

RUN_FILE = "run.json"
# Training settings a resumed run may change: how long it trains, and how much memory the
# feature cache may take (exact at any size, so the results do not depend on it).
RESUME_MAY_CHANGE = ("max_updates", "feature_cache_mib")
log = logging.getLogger("wav2vec2")


def prepare_run_dir(run_dir: Path, run: RunConfig, env: DistEnv) -> RunConfig:
    """Write run.json for a new run, or check that the requested run matches the saved one."""
    path = run_dir / RUN_FILE
    if path.is_file():
        try:
            saved = RunConfig.from_dict(json.loads(path.read_text()))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise Wav2Vec2Error(f"cannot read the saved run config ({exc})", path) from None
        same = saved.to_dict()
        asked = run.to_dict()
        for key in RESUME_MAY_CHANGE:
            same["train"][key] = asked["train"][key]
        if same != asked:
            diff = _diff(same, asked)
            raise Wav2Vec2Error(
                f"holds a run with other settings ({diff}); use a new --out, or the same "
                "settings to resume",
                run_dir,
            )
    if env.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        text = json.dumps(run.to_dict(), indent=2) + "\n"
        write_text_atomic(path, text)
    return run


def _diff(a: Any, b: Any, prefix: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            d = _diff(a.get(k), b.get(k), f"{prefix}{k}.")
            if d:
                return d
        return ""
    return f"{prefix.rstrip('.')}: saved {a!r}, asked {b!r}" if a != b else ""


def data_source(
    manifest: Path,
    run: RunConfig,
    env: DistEnv,
    *,
    train: bool,
    labels: Path | None = None,
    vocab: Vocabulary | None = None,
) -> DataSource | None:
    """A loader over ``manifest``; None for a missing or empty validation manifest."""
    d = run.train.data
    finetune = labels is not None
    if not manifest.is_file():
        if train:
            raise Wav2Vec2Error("manifest not found", manifest)
        return None
    dataset = AudioDataset(
        manifest,
        sample_rate=run.model.sample_rate,
        max_sample_size=d.max_sample_size,
        min_sample_size=d.min_sample_size if train else 0,
        min_valid_samples=run.model.feature_encoder.receptive_field,  # shorter: no frame
        normalize=run.model.normalize_waveform,
        labels_path=labels,
        vocab=vocab,
        pad=finetune or not train,  # pretraining crops to the shortest, like fairseq
        seed=run.train.seed,
        speed_factors=d.speed_perturb if train else (),
    )
    check_audio_root(dataset.root, manifest, "training" if train else "validation")
    if len(dataset) == 0:
        if train:
            raise Wav2Vec2Error("no usable utterances (all too short, too long or bad)", manifest)
        return None
    sampler = BucketBatchSampler(
        dataset.sizes.tolist(),
        max_tokens=d.max_tokens,
        max_sample_size=None if finetune else d.max_sample_size,
        seed=run.train.seed,
        shuffle=train,
        num_replicas=env.world_size,
        rank=env.rank,
    )
    if sampler.num_batches == 0:
        if train:
            raise Wav2Vec2Error(
                f"too few utterances for {env.world_size} process(es) at max_tokens={d.max_tokens}",
                manifest,
            )
        return None
    loader = build_loader(dataset, sampler, num_workers=d.num_workers)
    return DataSource(loader, sampler, manifest)


def train_run(
    run_dir: Path,
    run: RunConfig,
    task: Task,
    make_model,
    train: DataSource,
    valid: DataSource | None,
    env: DistEnv,
    device: torch.device,
    vocab: Vocabulary | None = None,
) -> FitResult:
    """Build the model, resume from RUN_DIR's newest checkpoint if any, and train. ``vocab``
    (fine-tuning) is saved beside the model in every checkpoint."""
    torch.manual_seed(run.train.seed)  # model initialisation
    model: Wav2Vec2Model = make_model()
    trainer = Trainer(run_dir, run, task, model, train, valid, env, device, vocab)
    if trainer.resume() and env.is_main:
        log.info("resuming %s from update %d", run_dir, trainer.update)
        print(f"resuming from {trainer.last_checkpoint} (update {trainer.update})")
    return trainer.fit()


@contextlib.contextmanager
def session(run: RunConfig) -> Iterator[tuple[DistEnv, torch.device]]:
    """The device and, under torchrun, the process group for one training command."""
    device = resolve_device(run.train.device)
    env = init_from_env(device)
    if env.enabled and device.type == "cuda":
        device = torch.device("cuda", env.local_rank)
        torch.cuda.set_device(device)
    clean = False
    try:
        yield env, device
        clean = True
    finally:
        shutdown(env, together=clean)


def report(out: Path, result: FitResult) -> None:
    from wav2vec2.training.plots import plot_run

    plots = plot_run(out)
    print(f"done: update {result.update}; last checkpoint {result.last_checkpoint}")
    if result.best_checkpoint:
        print(f"best checkpoint (model directory): {result.best_checkpoint}")
    print(f"plots: {out / 'plots'} ({len(plots)} files); log: {out / 'log.jsonl'}")

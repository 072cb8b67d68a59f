"""The training loop shared by pretraining and fine-tuning.

Read top to bottom, one update is: fetch ``update_freq`` micro-batches -> for each, seed its
randomness from its global batch index, forward under autocast, backward (gradients
synchronised across ranks only on the last) -> normalize gradients by the total sample size
over all micro-batches and ranks (fairseq) -> clip -> skip the update if anything is
non-finite -> optimizer step with the scheduled learning rate. Around it: logging, validation,
health warnings and atomic checkpoints that resume exactly.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from wav2vec2.errors import Wav2Vec2Error
from wav2vec2.models.wav2vec2 import Wav2Vec2Model
from wav2vec2.training import checkpoint as ckpt
from wav2vec2.training.config import RunConfig
from wav2vec2.training.distributed import DistEnv, all_reduce_sums, barrier
from wav2vec2.training.metrics import MetricsWriter
from wav2vec2.training.schedule import learning_rate
from wav2vec2.training.tasks import StepOutput, Task


class _TaskModule(nn.Module):
    """Routes the task's forward through ``nn.Module.__call__`` so DDP sees it."""

    def __init__(self, model: Wav2Vec2Model, task: Task):
        super().__init__()
        self.model, self.task = model, task

    def forward(self, batch, generator, valid: bool = False) -> StepOutput:
        fn = self.task.valid_forward if valid else self.task.forward
        return fn(self.model, batch, generator)


@dataclass
class DataSource:
    """A loader over a sampler; the trainer tracks the sampler's position."""

    loader: Any  # iterable of Batch | None (None: every item of the batch was unreadable)
    sampler: Any  # BucketBatchSampler


@dataclass(frozen=True)
class FitResult:
    update: int
    last_checkpoint: Path | None
    best_checkpoint: Path | None
    metrics: dict[str, float]


class TrainingStopped(Wav2Vec2Error):
    pass


def batch_seed(seed: int, epoch: int, global_batch: int) -> int:
    """A seed per global batch: the same whether that batch runs on rank r of W processes
    or as micro-batch r of update_freq=W in one process, and across resumes."""
    return (((seed * 1_000_003) ^ epoch) * 1_000_003 + global_batch) % (2**63 - 1)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


class Trainer:
    def __init__(
        self,
        run_dir: Path,
        run: RunConfig,
        task: Task,
        model: Wav2Vec2Model,
        train: DataSource,
        valid: DataSource | None,
        env: DistEnv,
        device: torch.device,
    ):
        self.run_dir, self.run, self.cfg = run_dir, run, run.train
        self.task, self.model, self.train_data, self.valid_data = task, model, train, valid
        self.env, self.device = env, device
        self.model.to(device)
        if self.cfg.precision == "fp16" and device.type != "cuda":
            raise Wav2Vec2Error("precision fp16 needs a GPU (use bf16 or fp32 on CPU)")
        self.autocast_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(
            self.cfg.precision
        )
        self.scaler = torch.amp.GradScaler("cuda") if self.cfg.precision == "fp16" else None
        o = self.cfg.optim
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(
            self.params, lr=o.lr, betas=o.betas, eps=o.eps, weight_decay=o.weight_decay
        )
        module = _TaskModule(model, task)
        # LayerDrop and fine-tuning's frozen phase leave parameters unused in some steps.
        self.module: nn.Module = (
            DistributedDataParallel(module, find_unused_parameters=True) if env.enabled else module
        )
        self.update = 0
        self.bad_updates = 0
        self.best_metric: float | None = None
        self.history: list[dict[str, float]] = []
        self.last_checkpoint: Path | None = None

    # -- resume -------------------------------------------------------------------------------
    def resume(self) -> bool:
        """Continue from the newest checkpoint in RUN_DIR, if any."""
        found = ckpt.list_checkpoints(self.run_dir)
        if not found:
            return False
        from wav2vec2.interop.loading import read_model_dir

        last = found[-1]
        weights = read_model_dir(last)
        self.model.load_state_dict(weights.state_dict)
        loaded = ckpt.load_trainer_state(last)
        self.optimizer.load_state_dict(loaded.optimizer)
        if self.scaler is not None and loaded.state.scaler:
            self.scaler.load_state_dict(loaded.state.scaler)
        ckpt.set_rng_state(loaded.rng_tensors, loaded.rng_meta)
        s = loaded.state
        self.update, self.bad_updates, self.best_metric = s.update, s.bad_updates, s.best_metric
        self.history = list(s.extra.get("history", []))
        self.train_data.sampler.load_state_dict(s.sampler)
        self.last_checkpoint = last
        return True

    # -- batches ------------------------------------------------------------------------------
    def _batches(self) -> Iterator[tuple[Any, int]]:
        """Yield (batch, seed) forever, moving through epochs; skips all-bad batches."""
        sampler = self.train_data.sampler
        while True:
            if len(sampler) == 0:  # epoch finished
                sampler.set_epoch(sampler.epoch + 1)
                if len(sampler) == 0:
                    raise Wav2Vec2Error("the training set yields no batches")
            for batch in self.train_data.loader:
                position = sampler.position
                sampler.advance(1)
                if batch is None:
                    continue
                yield (
                    batch,
                    batch_seed(self.cfg.seed, sampler.epoch, sampler.global_batch_index(position)),
                )

    # -- one update ---------------------------------------------------------------------------
    def _forward(self, batch, seed: int, valid: bool = False) -> StepOutput:
        torch.manual_seed(seed)  # dropout: reproducible per batch, across resumes and ranks
        generator = torch.Generator().manual_seed(seed)  # masks, negatives, Gumbel noise
        batch = batch.to(self.device)
        ctx = (
            torch.autocast(self.device.type, dtype=self.autocast_dtype)
            if self.autocast_dtype is not None
            else contextlib.nullcontext()
        )
        with ctx:
            return self.module(batch, generator, valid)

    def train_update(self, micro_batches: list[tuple[Any, int]]) -> dict[str, float]:
        self.module.train()
        self.task.on_update(self.model, self.update)
        lr = learning_rate(self.cfg.schedule, self.cfg.optim.lr, self.update, self.cfg.max_updates)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        sums: dict[str, float] = {}
        audio = padded = 0.0
        for i, (batch, seed) in enumerate(micro_batches):
            last = i == len(micro_batches) - 1
            sync = (
                self.module.no_sync() if self.env.enabled and not last else contextlib.nullcontext()
            )
            with sync:
                out = self._forward(batch, seed)
                loss = out.loss.float()
                (self.scaler.scale(loss) if self.scaler else loss).backward()
            for k, v in out.stats.items():
                sums[k] = sums.get(k, 0.0) + v
            sums["_finite"] = sums.get("_finite", 0.0) + float(math.isfinite(loss.item()))
            audio += float(batch.lengths.sum())
            padded += float(batch.waveforms.numel())
        sums["_micro"] = float(len(micro_batches))
        sums["_audio"], sums["_padded"] = audio, padded
        sums = all_reduce_sums(sums, self.env)
        sample_size = sums.get("sample_size", 0.0)
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        # DDP averaged gradients over ranks; fairseq normalizes by the total sample size.
        grads = [p.grad for p in self.params if p.grad is not None]
        if grads and sample_size > 0:
            torch._foreach_mul_(grads, self.env.world_size / sample_size)
        clip = self.cfg.optim.clip_norm if self.cfg.optim.clip_norm > 0 else float("inf")
        grad_norm = float(torch.nn.utils.clip_grad_norm_(self.params, clip)) if grads else 0.0
        finite = sums["_finite"] == sums["_micro"] and math.isfinite(grad_norm)
        if finite and sample_size > 0:
            if self.scaler is not None:
                self.scaler.step(self.optimizer)
            else:
                self.optimizer.step()
            self.bad_updates = 0
        else:
            self.bad_updates += 1
        if self.scaler is not None:
            self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.update += 1
        metrics = self.task.summarize(sums)
        metrics.update(
            lr=lr,
            grad_norm=grad_norm,
            skipped=float(not finite),
            audio_seconds=audio / 16_000,
            padding=1.0 - audio / padded if padded else 0.0,
        )
        return metrics

    # -- validation ---------------------------------------------------------------------------
    @torch.no_grad()
    def validate(self) -> dict[str, float] | None:
        if self.valid_data is None:
            return None
        self.module.eval()
        sums: dict[str, float] = {}
        sampler = self.valid_data.sampler
        for position, batch in enumerate(self.valid_data.loader):
            if batch is None:
                continue
            seed = batch_seed(self.cfg.seed + 1, 0, sampler.global_batch_index(position))
            out = self._forward(batch, seed, valid=True)
            for k, v in out.stats.items():
                sums[k] = sums.get(k, 0.0) + v
        sums = all_reduce_sums(sums, self.env) if sums or self.env.enabled else sums
        return self.task.summarize(sums) if sums else None

    # -- checkpoints --------------------------------------------------------------------------
    def save(self, metrics: dict[str, float] | None = None) -> Path | None:
        path = None
        if self.env.is_main:
            state = ckpt.TrainerState(
                update=self.update,
                epoch=self.train_data.sampler.epoch,
                sampler=self.train_data.sampler.state_dict(),
                scaler=self.scaler.state_dict() if self.scaler else None,
                bad_updates=self.bad_updates,
                best_metric=self.best_metric,
                extra={"history": self.history[-20:], "metrics": metrics or {}},
            )
            path = ckpt.save_checkpoint(
                self.run_dir, self.model, self.optimizer, state, self.run.to_dict()
            )
            ckpt.prune(self.run_dir, self.cfg.keep_last)
            self.last_checkpoint = path
        barrier(self.env)
        return path

    # -- the loop -----------------------------------------------------------------------------
    def fit(self) -> FitResult:
        resumed = self.update if self.last_checkpoint is not None else None
        writer = MetricsWriter(self.run_dir, resumed) if self.env.is_main else None
        bar = tqdm(
            total=self.cfg.max_updates,
            initial=self.update,
            unit="upd",
            disable=not self.env.is_main,
            dynamic_ncols=True,
        )
        batches = self._batches()
        window: dict[str, list[float]] = {}
        window_start = time.time()
        metrics: dict[str, float] = {}
        best_path = None
        try:
            while self.update < self.cfg.max_updates:
                micro = [next(batches) for _ in range(self.cfg.optim.update_freq)]
                metrics = self.train_update(micro)
                for k, v in metrics.items():
                    window.setdefault(k, []).append(v)
                bar.update(1)
                bar.set_postfix(self.task.progress(metrics))
                if self.update % self.cfg.log_interval == 0 or self.update == self.cfg.max_updates:
                    elapsed = time.time() - window_start
                    logged = {k: sum(v) / len(v) for k, v in window.items()}
                    logged["audio_seconds_per_second"] = sum(window["audio_seconds"]) / max(
                        elapsed, 1e-9
                    )
                    logged["skipped"] = sum(window["skipped"])
                    logged["epoch"] = self.train_data.sampler.epoch
                    self.history.append(logged)
                    if writer:
                        writer.write("train", self.update, logged)
                    for message in self.task.health(self.history, self.update, self.model):
                        if self.env.is_main:
                            tqdm.write(f"warning: {message}")
                            if writer:
                                writer.write("warning", self.update, {"message": message})
                    window, window_start = {}, time.time()
                if metrics["skipped"]:
                    self._check_bad_updates(bar)
                end = self.update == self.cfg.max_updates
                valid_now = self.update % self.cfg.valid_interval == 0 or end
                valid = self.validate() if valid_now else None
                if valid is not None:
                    if writer:
                        writer.write("valid", self.update, valid)
                    if self.env.is_main:
                        tqdm.write(
                            f"valid @ {self.update}: "
                            + ", ".join(f"{k} {v:.4g}" for k, v in valid.items())
                        )
                        for message in self.task.valid_health(valid, self.update):
                            tqdm.write(f"warning: {message}")
                            if writer:
                                writer.write("warning", self.update, {"message": message})
                if self.update % self.cfg.save_interval == 0 or end or valid is not None:
                    improved = valid is not None and (
                        self.best_metric is None or valid[self.task.best_key] < self.best_metric
                    )
                    if improved:
                        self.best_metric = valid[self.task.best_key]
                    path = self.save(valid or metrics)
                    if improved and path is not None:
                        best_path = ckpt.mark_best(self.run_dir, path)
        except KeyboardInterrupt:
            if self.update > 0:
                self.save(metrics)
            raise
        finally:
            bar.close()
            if writer:
                writer.close()
        best = self.run_dir / "checkpoints" / ckpt.BEST
        return FitResult(
            self.update,
            self.last_checkpoint,
            best_path or (best if best.exists() else None),
            metrics,
        )

    def _check_bad_updates(self, bar) -> None:
        if self.bad_updates >= self.cfg.max_bad_updates:
            where = self.last_checkpoint or "none saved yet"
            raise TrainingStopped(
                f"stopped after {self.bad_updates} consecutive updates with a non-finite loss "
                f"or gradient (at update {self.update}); last good checkpoint: {where}. "
                "Lower the learning rate, enable gradient clipping (optim.clip_norm) or use fp32."
            )
        bar.write(f"warning: update {self.update} skipped: non-finite loss or gradient")

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from wav2vec2.checkpoint import training_state as ckpt
from wav2vec2.errors import Wav2Vec2Error
from wav2vec2.faults import fault_point
from wav2vec2.models.wav2vec2 import Wav2Vec2Model
from wav2vec2.training.config import RunConfig
from wav2vec2.training.data_guard import PassTally
from wav2vec2.training.distributed import DistEnv, all_reduce_sums, barrier
from wav2vec2.training.metrics import MetricsWriter
from wav2vec2.training.schedule import learning_rate
from wav2vec2.training.tasks import StepOutput, Task
from wav2vec2.vocab import Vocabulary


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

    loader: Any  # iterable of Batch | SkippedBatch (every item of the batch was unreadable)
    sampler: Any  # BucketBatchSampler
    manifest: Path | None = None  # named when none of its audio can be read


@dataclass(frozen=True)
class FitResult:
    update: int
    last_checkpoint: Path | None
    best_checkpoint: Path | None
    metrics: dict[str, float]


class TrainingStopped(Wav2Vec2Error):
    pass


@dataclass
class _LogWindow:
    """The metrics of the updates since the last log record, averaged into the next one."""

    values: dict[str, list[float]] = field(default_factory=dict)
    start: float = field(default_factory=time.time)

    def add(self, metrics: dict[str, float]) -> None:
        for k, v in metrics.items():
            self.values.setdefault(k, []).append(v)

    def summary(self) -> dict[str, float]:
        elapsed = time.time() - self.start
        logged = {k: sum(v) / len(v) for k, v in self.values.items()}
        logged["audio_seconds_per_second"] = sum(self.values["audio_seconds"]) / max(elapsed, 1e-9)
        logged["skipped"] = sum(self.values["skipped"])
        return logged


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
        vocab: Vocabulary | None = None,
    ):
        """``vocab``: what the CTC head's outputs mean, saved into every checkpoint (None when
        pretraining)."""
        self.run_dir, self.run, self.cfg = run_dir, run, run.train
        self.task, self.model, self.train_data, self.valid_data = task, model, train, valid
        self.env, self.device, self.vocab = env, device, vocab
        self.model.to(device)
        if self.cfg.precision == "fp16" and device.type != "cuda":
            raise Wav2Vec2Error("precision fp16 needs a GPU (use bf16 or fp32 on CPU)")
        self.autocast_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(
            self.cfg.precision
        )
        self.scaler = torch.amp.GradScaler("cuda") if self.cfg.precision == "fp16" else None
        o = self.cfg.optim
        self.params = [p for p in model.parameters() if p.requires_grad]
        # The fused kernel: one pass over each tensor, about 3x faster than the per-tensor
        # loop on a CPU (BASE: 65 ms against 210 ms a step), the same numbers to float32
        # rounding; transformers' Trainer also defaults to it since torch 2.8.
        self.optimizer = torch.optim.AdamW(
            self.params, lr=o.lr, betas=o.betas, eps=o.eps, weight_decay=o.weight_decay,
            fused=device.type in ("cpu", "cuda"),
        )  # fmt: skip
        model.encoder.activation_checkpointing = self.cfg.activation_checkpointing
        module = _TaskModule(model, task)
        # LayerDrop gives dropped blocks a zero gradient (the same blocks on every rank, see
        # train_update), so every parameter has one in every step unless the task leaves some
        # unused (fine-tuning's frozen phase): only then does DDP search the graph for them,
        # which costs a pass over it per step.
        self.find_unused_parameters = not task.uses_every_parameter
        self.module: nn.Module = (
            DistributedDataParallel(module, find_unused_parameters=self.find_unused_parameters)
            if env.enabled
            else module
        )
        self.update = 0
        self.bad_updates = 0
        self.best_metric: float | None = None
        self.best_update: int | None = None  # the update ``best`` holds
        self.history: list[dict[str, float]] = []
        self.last_checkpoint: Path | None = None

    # -- resume -------------------------------------------------------------------------------
    def resume(self) -> bool:
        """Continue from the newest checkpoint in RUN_DIR, if any, first clearing what a killed
        run left behind: temporary files, and a ``best`` that lags the saved state."""
        if self.env.is_main:
            ckpt.sweep_temp(self.run_dir)
        found = ckpt.list_checkpoints(self.run_dir)
        if not found:
            return False
        last = found[-1]
        s = ckpt.load_checkpoint(
            last, self.model, self.optimizer, self.scaler, self.train_data.sampler
        )
        self.update, self.bad_updates, self.best_metric = s.update, s.bad_updates, s.best_metric
        self.best_update = s.best_update
        self.history = s.history
        self.last_checkpoint = last
        if self.env.is_main:
            with self._stop_if_unwritable():
                ckpt.repair_best(self.run_dir, s)
        return True

    # -- batches ------------------------------------------------------------------------------
    def _batches(self) -> Iterator[tuple[Any, int]]:
        """Yield (batch, seed) forever, moving through epochs; skips all-bad batches, and stops
        the run when a whole epoch has nothing else (see ``data_guard``)."""
        sampler = self.train_data.sampler
        while True:
            if len(sampler) == 0:  # epoch finished
                sampler.set_epoch(sampler.epoch + 1)
                if len(sampler) == 0:
                    raise Wav2Vec2Error("the training set yields no batches")
            # An epoch resumed midway is not a full pass: only one from its start is judged.
            tally = PassTally("training", self.train_data.manifest)
            full_pass = sampler.position == 0
            for batch in self.train_data.loader:
                position = sampler.position
                sampler.advance(1)
                if not tally.count(batch):
                    continue
                yield (
                    batch,
                    batch_seed(self.cfg.seed, sampler.epoch, sampler.global_batch_index(position)),
                )
            if full_pass:
                tally.check()

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
        # LayerDrop drops the same blocks in every micro-batch of this update, on every rank.
        self.model.encoder.layerdrop_seed = batch_seed(self.cfg.seed + 2, 0, self.update)
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
        # The dropped blocks' zero gradients (there only for DDP) are removed, so that the
        # optimizer skips those parameters in this update as fairseq's does (there a dropped
        # block's parameters get no gradient): no weight decay, no step from momentum.
        encoder = self.model.encoder
        for i in encoder.dropped_blocks():
            for p in encoder.layers[i].parameters():
                p.grad = None
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
            # The fused kernel writes the weights without bumping their version counters,
            # which the models' weight caches (models/weight_cache.py) key on: bump them, or
            # validation would run on the weights cached before this step.
            torch.autograd.graph.increment_version(self.params)
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
            audio_seconds=audio / self.run.model.sample_rate,
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
        tally = PassTally("validation", self.valid_data.manifest)
        for position, batch in enumerate(self.valid_data.loader):
            if not tally.count(batch):
                continue
            seed = batch_seed(self.cfg.seed + 1, 0, sampler.global_batch_index(position))
            out = self._forward(batch, seed, valid=True)
            for k, v in out.stats.items():
                sums[k] = sums.get(k, 0.0) + v
        tally.check()
        sums = all_reduce_sums(sums, self.env) if sums or self.env.enabled else sums
        return self.task.summarize(sums) if sums else None

    # -- checkpoints --------------------------------------------------------------------------
    def save(self, metrics: dict[str, float] | None = None) -> Path | None:
        path = None
        if self.env.is_main:
            sampler = self.train_data.sampler
            state = ckpt.TrainerState(
                update=self.update,
                epoch=sampler.epoch,
                bad_updates=self.bad_updates,
                best_metric=self.best_metric,
                history=self.history[-20:],
                metrics=metrics or {},
                best_update=self.best_update,
            )
            with self._stop_if_unwritable():
                path = ckpt.save_checkpoint(
                    self.run_dir, self.model, self.optimizer, self.scaler, sampler, state,
                    vocab=self.vocab, run_config=self.run.to_dict(),
                )  # fmt: skip
            ckpt.prune(self.run_dir, self.cfg.keep_last)
            self.last_checkpoint = path
        barrier(self.env)
        return path

    @contextlib.contextmanager
    def _stop_if_unwritable(self) -> Iterator[None]:
        """A checkpoint that cannot be written (disk full, no permission) stops the run with
        one line saying so and where to resume from; what was saved before is untouched."""
        try:
            yield
        except Wav2Vec2Error as exc:
            where = self.last_checkpoint or "the start"
            raise TrainingStopped(
                f"{exc}. Training stopped at update {self.update}; once that is fixed, re-run "
                f"the same command to resume from {where}"
            ) from None

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
        window = _LogWindow()
        metrics: dict[str, float] = {}
        best_path = None
        try:
            while self.update < self.cfg.max_updates:
                micro = [next(batches) for _ in range(self.cfg.optim.update_freq)]
                metrics = self.train_update(micro)
                fault_point("update")
                window.add(metrics)
                bar.update(1)
                bar.set_postfix(self.task.progress(metrics))
                end = self.update == self.cfg.max_updates
                if self.update % self.cfg.log_interval == 0 or end:
                    self._log(window.summary(), writer)
                    window = _LogWindow()
                if metrics["skipped"]:
                    self._check_bad_updates(bar)
                valid_now = self.update % self.cfg.valid_interval == 0 or end
                valid = self._validate_and_report(writer) if valid_now else None
                if self.update % self.cfg.save_interval == 0 or end or valid is not None:
                    best_path = self._save_and_mark_best(valid, metrics) or best_path
        except KeyboardInterrupt:
            saved = self.last_checkpoint == ckpt.checkpoint_dir(self.run_dir, self.update)
            if self.update > 0 and not saved:  # replacing a saved one would risk it for nothing
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

    def _log(self, logged: dict[str, float], writer: MetricsWriter | None) -> None:
        """Record a log window's averages, then run the task's health checks on the history."""
        logged["epoch"] = self.train_data.sampler.epoch
        self.history.append(logged)
        if writer:
            writer.write("train", self.update, logged)
        # Every rank runs the checks (they remember what they warned about); rank 0 writes.
        for message in self.task.health(self.history, self.update, self.model):
            if self.env.is_main:
                self._warn(message, writer)

    def _validate_and_report(self, writer: MetricsWriter | None) -> dict[str, float] | None:
        """Validate on every rank; rank 0 logs and prints the result and its warnings."""
        valid = self.validate()
        if valid is None:
            return None
        if writer:
            writer.write("valid", self.update, valid)
        if self.env.is_main:
            tqdm.write(
                f"valid @ {self.update}: " + ", ".join(f"{k} {v:.4g}" for k, v in valid.items())
            )
            for message in self.task.valid_health(valid, self.update):
                self._warn(message, writer)
        return valid

    def _warn(self, message: str, writer: MetricsWriter | None) -> None:
        tqdm.write(f"warning: {message}")
        if writer:
            writer.write("warning", self.update, {"message": message})

    def _save_and_mark_best(
        self, valid: dict[str, float] | None, metrics: dict[str, float]
    ) -> Path | None:
        """Save a checkpoint (with the validation metrics when there are some); when they beat
        the best so far, copy it to ``best`` and return that path."""
        improved = valid is not None and (
            self.best_metric is None or valid[self.task.best_key] < self.best_metric
        )
        if improved:
            self.best_metric, self.best_update = valid[self.task.best_key], self.update
        # The state saying "best is this update" lands first, then the copy; a crash between
        # them is repaired on resume (checkpoint.training_state explains why that suffices).
        path = self.save(valid or metrics)
        if improved and path is not None:
            with self._stop_if_unwritable():
                return ckpt.mark_best(self.run_dir, path)
        return None

    def _check_bad_updates(self, bar) -> None:
        if self.bad_updates >= self.cfg.max_bad_updates:
            where = self.last_checkpoint or "none saved yet"
            raise TrainingStopped(
                f"stopped after {self.bad_updates} consecutive updates with a non-finite loss "
                f"or gradient (at update {self.update}); last good checkpoint: {where}. "
                "Lower the learning rate, enable gradient clipping (optim.clip_norm) or use fp32."
            )
        bar.write(f"warning: update {self.update} skipped: non-finite loss or gradient")

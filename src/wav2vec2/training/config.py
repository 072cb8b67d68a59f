"""Training configuration: one frozen dataclass tree, saved in every checkpoint.

Defaults follow fairseq's wav2vec 2.0 recipes; field comments give fairseq's names.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from wav2vec2.audio import check_speed_factors
from wav2vec2.config import Wav2Vec2Config
from wav2vec2.errors import Wav2Vec2Error
from wav2vec2.serialization import dataclass_from_dict, set_dotted


@dataclass(frozen=True)
class OptimConfig:
    lr: float = 5e-4  # fs: optimization.lr (peak)
    betas: tuple[float, float] = (0.9, 0.98)  # fs: adam_betas
    eps: float = 1e-6  # fs: adam_eps
    # Decoupled (AdamW-style) decay on every parameter, as fairseq's Adam applies it.
    weight_decay: float = 0.01  # fs: weight_decay
    clip_norm: float = 0.0  # fs: clip_norm (0 = no clipping, fairseq's pretraining default)
    # Micro-batches accumulated per update: simulates update_freq x more GPUs.
    update_freq: int = 1  # fs: update_freq


@dataclass(frozen=True)
class ScheduleConfig:
    # "polynomial": linear warmup then polynomial decay (pretraining).
    # "tri_stage": warmup / hold / exponential decay (fine-tuning, paper sec. 4.4).
    kind: Literal["polynomial", "tri_stage", "constant"] = "polynomial"
    warmup_updates: int = 32_000  # fs: warmup_updates (polynomial)
    power: float = 1.0  # fs: power
    end_lr: float = 0.0  # fs: end_learning_rate
    phase_ratio: tuple[float, float, float] = (0.1, 0.4, 0.5)  # fs: phase_ratio (tri_stage)
    init_lr_scale: float = 0.01  # fs: init_lr_scale
    final_lr_scale: float = 0.05  # fs: final_lr_scale


@dataclass(frozen=True)
class DataConfig:
    train_subset: str = "train"  # manifest name in --data: train.tsv
    valid_subset: str = "valid"  # valid.tsv (skipped when absent or empty)
    labels: str | None = None  # label extension for fine-tuning, e.g. "ltr"
    max_tokens: int = 1_400_000  # fs: dataset.max_tokens (samples per micro-batch)
    max_sample_size: int = 250_000  # fs: task.max_sample_size (crop length, samples)
    min_sample_size: int = 32_000  # fs: task.min_sample_size
    num_workers: int = 2  # fs: dataset.num_workers
    # Speed perturbation of training items (ours; fairseq has none): e.g. [0.9, 1.0, 1.1].
    speed_perturb: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        check_speed_factors(self.speed_perturb, "data.speed_perturb factors")


@dataclass(frozen=True)
class TrainConfig:
    max_updates: int = 400_000  # fs: optimization.max_update
    seed: int = 1  # fs: common.seed
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"  # fp16 needs a GPU (loss scaling)
    device: str = "auto"  # "auto": cuda when available, else cpu
    log_interval: int = 200  # fs: log_interval (updates)
    valid_interval: int = 10_000  # fs: validate_interval_updates
    save_interval: int = 25_000  # fs: save_interval_updates
    keep_last: int = 2  # fs: keep_interval_updates
    # Stop after this many consecutive updates with a non-finite loss or gradient.
    max_bad_updates: int = 10
    # Fine-tuning: only the CTC output layer trains for this many updates.
    freeze_updates: int = 0  # fs: freeze_finetune_updates
    # Recompute each Transformer block's activations in the backward pass instead of keeping
    # them: less memory for about one more forward pass of the Transformer per step.
    activation_checkpointing: bool = False
    # Fine-tuning with a frozen feature encoder and no speed perturbation: host memory (MiB,
    # per process) for its output, kept per batch and reused in later epochs instead of
    # rerunning it; exact (training/feature_cache.py). 0: off. Ours; fairseq has none.
    feature_cache_mib: int = 1024
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    data: DataConfig = field(default_factory=DataConfig)

    def __post_init__(self) -> None:
        if self.feature_cache_mib < 0:
            raise ValueError(
                f"feature_cache_mib must be 0 (off) or more, got {self.feature_cache_mib}"
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        return dataclass_from_dict(cls, data)


@dataclass(frozen=True)
class RunConfig:
    """What a run directory is: the model to build and how to train it."""

    task: Literal["pretrain", "finetune"]
    model: Wav2Vec2Config
    train: TrainConfig

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task, "model": self.model.to_dict(), "train": self.train.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        return cls(
            data["task"],
            Wav2Vec2Config.from_dict(data["model"]),
            TrainConfig.from_dict(data["train"]),
        )


# The tree each override root sets; a key without one of these roots is a training setting.
OVERRIDE_ROOTS = ("model", "train")


def split_setting(key: str) -> tuple[str, str]:
    """A dotted setting -> (tree, path in that tree): ``model.transformer.layers`` ->
    ("model", "transformer.layers"); ``train.optim.lr`` and ``optim.lr`` -> ("train",
    "optim.lr")."""
    root, dot, path = key.partition(".")
    return (root, path) if dot and root in OVERRIDE_ROOTS else ("train", key)


def apply_overrides(run: RunConfig, overrides: Mapping[str, Any]) -> RunConfig:
    """Dotted overrides: ``model.transformer.layers=6`` for the model, anything else (e.g.
    ``optim.lr=1e-4``, ``max_updates=10``) for the training config."""
    trees = {"model": run.model.to_dict(), "train": run.train.to_dict()}
    for key, value in overrides.items():
        root, path = split_setting(key)
        try:
            set_dotted(trees[root], path, value)
        except KeyError:
            raise Wav2Vec2Error(f"unknown setting {key!r}") from None
    try:
        model = Wav2Vec2Config.from_dict(trees["model"])
        return RunConfig(run.task, model, TrainConfig.from_dict(trees["train"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise Wav2Vec2Error(f"invalid setting ({exc})") from None


def parse_set(items: list[str]) -> dict[str, Any]:
    """``--set key=value`` items; values are JSON when they parse as JSON, else strings."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise Wav2Vec2Error(f"--set expects key=value, got {item!r}")
        try:
            out[key.strip()] = json.loads(raw)
        except ValueError:
            out[key.strip()] = raw
    return out


def read_config_file(path: str | Path) -> dict[str, Any]:
    """A JSON file of dotted or nested overrides, flattened to dotted keys."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise Wav2Vec2Error(f"cannot read config file ({exc})", path) from None
    if not isinstance(data, dict):
        raise Wav2Vec2Error("config file must hold a JSON object", path)
    flat: dict[str, Any] = {}

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, dict) and node:
            for k, v in node.items():
                walk(f"{prefix}.{k}" if prefix else k, v)
        else:
            flat[prefix] = node

    walk("", data)
    return flat

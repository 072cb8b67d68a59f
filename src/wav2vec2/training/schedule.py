"""Learning-rate schedules as pure functions of the update number (no hidden state, so a
resumed run needs only the update count)."""

from __future__ import annotations

import math

from wav2vec2.training.config import ScheduleConfig


def learning_rate(cfg: ScheduleConfig, peak: float, update: int, max_updates: int) -> float:
    if cfg.kind == "constant":
        return peak
    if cfg.kind == "polynomial":
        return _polynomial(cfg, peak, update, max_updates)
    if cfg.kind == "tri_stage":
        return _tri_stage(cfg, peak, update, max_updates)
    raise ValueError(f"unknown schedule {cfg.kind!r}")


def _polynomial(cfg: ScheduleConfig, peak: float, update: int, total: int) -> float:
    """fairseq polynomial_decay: linear warmup from 0, then decay to end_lr at ``total``."""
    warmup = min(cfg.warmup_updates, total)
    if warmup > 0 and update <= warmup:
        return peak * update / warmup
    if update >= total:
        return cfg.end_lr
    remaining = 1 - (update - warmup) / max(total - warmup, 1)
    return (peak - cfg.end_lr) * remaining**cfg.power + cfg.end_lr


def _tri_stage(cfg: ScheduleConfig, peak: float, update: int, total: int) -> float:
    """fairseq tri_stage (paper sec. 4.4): linear warmup from init_lr_scale * peak over the
    first 10%, hold for 40%, exponential decay to final_lr_scale * peak over the last 50%."""
    warmup, hold, decay = (int(r * total) for r in cfg.phase_ratio)
    init_lr = cfg.init_lr_scale * peak
    if update < warmup:
        return init_lr + (peak - init_lr) * update / warmup
    update -= warmup
    if update < hold:
        return peak
    update -= hold
    if update <= decay and decay > 0:
        return peak * math.exp(math.log(cfg.final_lr_scale) * update / decay)
    return cfg.final_lr_scale * peak

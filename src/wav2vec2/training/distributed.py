"""torch.distributed set-up for ``torchrun``: gloo on CPU, nccl on GPU. Only rank 0 writes."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistEnv:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_from_env(device: torch.device) -> DistEnv:
    """Join the process group when started by torchrun (WORLD_SIZE > 1), else single."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistEnv()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistEnv(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))


def all_reduce_sums(values: dict[str, float], env: DistEnv) -> dict[str, float]:
    """Sum a dict of floats over ranks (same keys on every rank)."""
    if not env.enabled:
        return values
    keys = sorted(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64)
    dist.all_reduce(t)
    return dict(zip(keys, t.tolist()))


def barrier(env: DistEnv) -> None:
    if env.enabled:
        dist.barrier()


def shutdown(env: DistEnv, *, together: bool) -> None:
    """Leave the process group. ``together`` (a clean finish): wait for every rank first,
    since rank 0 still reports (plots) after training. After an error the peers may sit in
    another collective, so a failing rank leaves at once. (The abort seen at exit under
    torchrun happens later, in interpreter shutdown; ``wav2vec2.__main__`` handles it.)"""
    if env.enabled and dist.is_initialized():
        if together:
            dist.barrier()
        dist.destroy_process_group()

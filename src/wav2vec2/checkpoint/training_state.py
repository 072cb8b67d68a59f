"""Training checkpoints: everything needed to resume exactly, with no pickle anywhere.

A checkpoint is a directory ``RUN_DIR/checkpoints/update_NNNNNNNN/`` holding

- ``config.json`` + ``model.safetensors`` (+ ``vocab.json``): a complete model directory in
  our format, so any checkpoint can be passed where a MODEL is expected;
- ``trainer.safetensors``: optimizer moments and RNG state tensors;
- ``trainer.json``: update, epoch, sampler position, scheduler/scaler state, optimizer
  hyper-parameters, Python/NumPy RNG states, the run config and the last metrics.

It is written into a temporary directory and renamed into place, so a crash (even kill -9)
never leaves a half-written checkpoint under a real name; an old checkpoint is renamed before
it is deleted, for the same reason. Whatever a killed run left under a temporary name is swept
when the next run starts (:func:`sweep_temp`). Loading reads only JSON and safetensors, so it
cannot execute code.

``checkpoints/best`` is a copy of one checkpoint's model files and ``trainer.json``, so it
records which update it holds. The checkpoint that first reaches a new best metric records
that update as ``best_update`` and is saved *before* ``best`` is copied from it: a crash in
between leaves a state that names a best which ``best`` does not hold (or no ``best`` at all,
if the crash fell between the two renames that replace it). That window needs no second
atomic write to close, because it is repaired on resume (:func:`repair_best`): the only state
that can disagree with ``best`` is the newest checkpoint's, with ``best_update`` equal to its
own update (nothing is saved after it until ``best`` is in place, and pruning keeps the
newest), and resume loads exactly that checkpoint, so the copy ``best`` needs is there to make.

:func:`save_checkpoint` and :func:`load_checkpoint` take the same objects (model, optimizer,
grad scaler, sampler), as icefall's pair does: one call saves them with the RNG states and the
trainer's counters, one call restores them all and returns the counters.
"""

from __future__ import annotations

import json
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from safetensors.torch import load_file
from torch import Tensor

from wav2vec2.atomic import (
    TMP_PREFIX,
    atomic_dir,
    temp_path,
    write_safetensors_atomic,
)
from wav2vec2.checkpoint.model_dir import (
    CONFIG_FILE,
    VOCAB_FILE,
    WEIGHTS_FILE,
    read_model_dir,
    save_model_dir,
)
from wav2vec2.errors import Wav2Vec2Error
from wav2vec2.faults import fault_point
from wav2vec2.models.wav2vec2 import Wav2Vec2Model
from wav2vec2.vocab import Vocabulary

PREFIX = "update_"
BEST = "best"
STATE_FILE, TENSORS_FILE = "trainer.json", "trainer.safetensors"


class Stateful(Protocol):
    """A sampler or grad scaler: its state is a JSON-serializable dict."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class TrainerState:
    """The trainer's counters: saved beside the objects' states, returned by a load."""

    update: int
    epoch: int  # the sampler's, for readers of trainer.json (the sampler restores its own)
    bad_updates: int  # consecutive updates skipped for a non-finite loss or gradient
    best_metric: float | None  # the task's best_key at the ``best`` checkpoint
    history: list[dict[str, float]]  # the last logged windows, for the health checks
    metrics: dict[str, float]  # the metrics this checkpoint was saved with
    best_update: int | None = None  # the update ``best`` holds (None: none yet, or older runs)


# -- RNG -----------------------------------------------------------------------------------


def _rng_state() -> tuple[dict[str, Tensor], dict[str, Any]]:
    tensors = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    py = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    meta = {
        "python": [py[0], list(py[1]), py[2]],
        "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)],
    }
    return tensors, meta


def _set_rng_state(tensors: dict[str, Tensor], meta: dict[str, Any]) -> None:
    torch.set_rng_state(tensors["rng.torch"])
    cuda = [tensors[k] for k in sorted(tensors) if k.startswith("rng.cuda.")]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
    version, state, gauss = meta["python"]
    random.setstate((version, tuple(state), gauss))
    kind, keys, pos, has_gauss, cached = meta["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))


# -- optimizer -----------------------------------------------------------------------------


def _optimizer_to_flat(opt: torch.optim.Optimizer) -> tuple[dict[str, Tensor], dict[str, Any]]:
    state = opt.state_dict()
    tensors, scalars = {}, {}
    for idx, entry in state["state"].items():
        for name, value in entry.items():
            if isinstance(value, Tensor):
                tensors[f"optim.{idx}.{name}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{idx}.{name}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _optimizer_from_flat(tensors: dict[str, Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, idx, name = key.split(".", 2)
            state.setdefault(int(idx), {})[name] = value
    for key, value in meta["scalars"].items():
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = value
    groups = meta["param_groups"]
    for g in groups:  # JSON turned tuples into lists
        if "betas" in g:
            g["betas"] = tuple(g["betas"])
    return {"state": state, "param_groups": groups}


# -- save / load ---------------------------------------------------------------------------


def save_checkpoint(
    run_dir: Path,
    model: Wav2Vec2Model,
    optimizer: torch.optim.Optimizer,
    scaler: Stateful | None,
    sampler: Stateful,
    state: TrainerState,
    *,
    vocab: Vocabulary | None,
    run_config: dict[str, Any],
) -> Path:
    """Write ``checkpoints/update_N`` atomically and return its path."""
    final = checkpoint_dir(run_dir, state.update)
    with atomic_dir(final) as tmp:  # re-saving the same update replaces it
        save_model_dir(model, tmp, vocab)
        fault_point("checkpoint")
        opt_tensors, opt_meta = _optimizer_to_flat(optimizer)
        rng_tensors, rng_meta = _rng_state()
        tensors = {**opt_tensors, **rng_tensors}
        write_safetensors_atomic(tmp / TENSORS_FILE, tensors)
        meta = {
            "update": state.update,
            "epoch": state.epoch,
            "sampler": sampler.state_dict(),
            "scaler": scaler.state_dict() if scaler is not None else None,
            "bad_updates": state.bad_updates,
            "best_metric": state.best_metric,
            "best_update": state.best_update,
            "extra": {"history": state.history, "metrics": state.metrics},
            "optimizer": opt_meta,
            "rng": rng_meta,
            "run": run_config,
        }
        (tmp / STATE_FILE).write_text(json.dumps(meta, indent=1) + "\n")
    return final


def load_checkpoint(
    checkpoint: Path,
    model: Wav2Vec2Model,
    optimizer: torch.optim.Optimizer,
    scaler: Stateful | None,
    sampler: Stateful,
) -> TrainerState:
    """Restore what :func:`save_checkpoint` saved: the model's weights, the optimizer, the
    scaler, every RNG and the sampler's position. Returns the trainer's counters. Everything
    is read before anything is restored, so a corrupt checkpoint changes nothing."""
    weights = read_model_dir(checkpoint)
    try:
        meta = json.loads((checkpoint / STATE_FILE).read_text())
        tensors = load_file(str(checkpoint / TENSORS_FILE))
    except Exception as exc:  # corrupt JSON or safetensors: say which checkpoint
        raise Wav2Vec2Error(f"cannot read training state ({exc})", checkpoint) from None
    extra = meta["extra"]
    state = TrainerState(
        update=meta["update"],
        epoch=meta["epoch"],
        bad_updates=meta["bad_updates"],
        best_metric=meta["best_metric"],
        history=list(extra.get("history", [])),
        metrics=extra.get("metrics", {}),
        best_update=meta.get("best_update"),
    )
    model.load_state_dict(weights.state_dict)
    optimizer.load_state_dict(_optimizer_from_flat(tensors, meta["optimizer"]))
    if scaler is not None and meta["scaler"]:
        scaler.load_state_dict(meta["scaler"])
    _set_rng_state(tensors, meta["rng"])
    sampler.load_state_dict(meta["sampler"])
    return state


# -- the run's checkpoints -----------------------------------------------------------------


def checkpoint_dir(run_dir: Path, update: int) -> Path:
    """Where the checkpoint of ``update`` lives: ``RUN_DIR/checkpoints/update_NNNNNNNN``."""
    return run_dir / "checkpoints" / f"{PREFIX}{update:08d}"


def mark_best(run_dir: Path, checkpoint: Path) -> Path:
    """Copy a checkpoint's model files to ``checkpoints/best`` (atomically replaced)."""
    best = run_dir / "checkpoints" / BEST
    with atomic_dir(best) as tmp:
        for name in (CONFIG_FILE, WEIGHTS_FILE, VOCAB_FILE, STATE_FILE):
            if (checkpoint / name).exists():
                shutil.copy2(checkpoint / name, tmp / name)
        fault_point("best")
    return best


def held_by_best(run_dir: Path) -> int | None:
    """The update whose model ``checkpoints/best`` holds; None when there is no ``best``. (It
    is only ever put in place whole, so if its ``trainer.json`` is there, so is the rest.)"""
    try:
        return json.loads((run_dir / "checkpoints" / BEST / STATE_FILE).read_text())["update"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def repair_best(run_dir: Path, state: TrainerState) -> Path | None:
    """Make ``best`` hold ``state.best_update`` again after a crash between saving that
    checkpoint and copying it (see the module docstring); returns ``best`` when it was
    re-made. ``state`` is the newest checkpoint's, just loaded."""
    if state.best_update is None or held_by_best(run_dir) == state.best_update:
        return None
    source = checkpoint_dir(run_dir, state.best_update)
    return mark_best(run_dir, source) if source.is_dir() else None


def list_checkpoints(run_dir: Path) -> list[Path]:
    root = run_dir / "checkpoints"
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and p.name.startswith(PREFIX)]
    return sorted(found, key=lambda p: int(p.name[len(PREFIX) :]))


def prune(run_dir: Path, keep_last: int) -> None:
    """Delete all but the newest ``keep_last`` checkpoints (0: keep all). Each is renamed to
    a temporary name first, so a crash mid-delete never leaves half a checkpoint under a real
    name, where a resume or a user could take it for a whole one."""
    for old in list_checkpoints(run_dir)[:-keep_last] if keep_last > 0 else []:
        doomed = temp_path(old)
        try:
            old.rename(doomed)
        except OSError:
            continue  # not ours to delete after all (permissions): it stays whole
        fault_point("prune")
        shutil.rmtree(doomed, ignore_errors=True)


def sweep_temp(run_dir: Path) -> None:
    """Delete what a killed run left under a temporary name in RUN_DIR and its checkpoints.
    Call it while this run has no write under way: every temporary name is then a dead run's."""
    for folder in (run_dir, run_dir / "checkpoints"):
        for stale in folder.glob(f"{TMP_PREFIX}*") if folder.is_dir() else ():
            if stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
            else:
                stale.unlink(missing_ok=True)

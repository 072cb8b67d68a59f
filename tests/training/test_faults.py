"""Crash safety of training runs: SIGKILL at seeded moments, and a full disk.

Each run below is killed five times (a pretraining run and a fine-tuning run: ten moments),
with the test hook in ``wav2vec2.faults``, between updates and inside every kind of write: an
update checkpoint, ``best``, the swap that replaces ``best``, the deletion of an old checkpoint,
the repair of ``best`` on resume. Every rerun must resume from the newest complete checkpoint;
at the end no temporary file may be left, and ``best`` and every logged loss must be those of
an uninterrupted run.

The moments are drawn (seeded) from the uninterrupted run's own trace of the hook's points,
so each one is known to come: a run resumed at update ``u`` passes the points of updates
``u+1..`` in the same order, after the repair of ``best`` when the kill left one to make.
Killed runs are forked from this process (no new interpreter to start), and every run uses one
thread, so that all of them compute alike.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import DETERMINISTIC, finetune_argv, pretrain_argv, settings_file, train_losses
from safetensors.torch import load_file

from wav2vec2 import faults
from wav2vec2.checkpoint import training_state as ckpt
from wav2vec2.cli import main

# Every update validates, saves and prunes (keep_last=1), so a few updates pass every moment.
EVERY_UPDATE = {"log_interval": 1, "valid_interval": 1, "save_interval": 1, "keep_last": 1,
                "data.num_workers": 0}  # fmt: skip
PRETRAIN = {**EVERY_UPDATE, **DETERMINISTIC, "data.max_tokens": 48000,
            "data.max_sample_size": 24000, "data.min_sample_size": 16000, "optim.lr": 0.002,
            "schedule.warmup_updates": 2}  # fmt: skip
FINETUNE = {**EVERY_UPDATE, "data.max_tokens": 100000, "model.transformer.layerdrop": 0.0}
UPDATES = 6
KILLS = 5  # per run: ten in all


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def argv_for(tiny_corpus, tone_corpus, tiny_pretrained, tmp_path):
    """task -> out -> the command line of that run."""

    def argv(task: str, out: Path) -> list[str]:
        if task == "pretrain":
            return pretrain_argv(tiny_corpus, out, settings_file(tmp_path, **PRETRAIN), UPDATES)
        config = settings_file(tmp_path, False, **FINETUNE)
        return finetune_argv(tone_corpus, tiny_pretrained, out, UPDATES, config)

    return argv


# -- running and killing -----------------------------------------------------------------------


def _child(argv: list[str], fault: str, output: str) -> None:
    sys.stdout = sys.stderr = open(output, "w", buffering=1)  # noqa: SIM115 -- dies with us
    os.environ[faults.ENV] = fault
    torch.set_num_threads(1)
    sys.exit(main(argv))


def run_forked(argv: list[str], fault: str, output: Path) -> tuple[int, str]:
    """Run the CLI in a forked process with ``WAV2VEC2_FAULT_AT=fault``; (exit code, output)."""
    proc = multiprocessing.get_context("fork").Process(
        target=_child, args=(argv, fault, str(output))
    )
    proc.start()
    proc.join(timeout=120)
    if proc.is_alive():
        proc.kill()
        proc.join()
        pytest.fail(f"run with {fault} hung:\n{output.read_text()[-2000:]}")
    return proc.exitcode, output.read_text()


# -- the moments -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Moment:
    point: str  # a fault point (wav2vec2.faults)
    update: int  # the update whose work passes it; 0: the repair of best on resume
    nth: int  # how many times the killed process passes ``point`` up to this moment


def points_by_update(trace: list[str]) -> dict[int, list[str]]:
    """An uninterrupted run's trace, cut at its ``update`` points: {update: its points}."""
    out: dict[int, list[str]] = {}
    for point in trace:
        if point == "update":
            out[len(out) + 1] = []
        out[len(out)].append(point)
    return out


def newest(out: Path) -> Path | None:
    found = ckpt.list_checkpoints(out)
    return found[-1] if found else None


def repair_ahead(out: Path) -> list[str]:
    """The points the repair of ``best`` will pass when ``out`` is resumed (none if ``best``
    is right): it copies (``best``), then replaces a ``best`` that is there (``swap``)."""
    last = newest(out)
    if last is None:
        return []
    best_update = json.loads((last / ckpt.STATE_FILE).read_text()).get("best_update")
    if best_update is None or ckpt.held_by_best(out) == best_update:
        return []
    return ["best", "swap"] if (out / "checkpoints" / ckpt.BEST).is_dir() else ["best"]


def moments_ahead(by_update: dict[int, list[str]], out: Path) -> list[Moment]:
    """Every moment, in order, that a run resumed from ``out``'s newest checkpoint passes."""
    resumed_at = int(newest(out).name[len(ckpt.PREFIX) :]) if newest(out) else 0
    sequence = [(0, p) for p in repair_ahead(out)]
    sequence += [(u, p) for u in sorted(by_update) if u > resumed_at for p in by_update[u]]
    seen: Counter[str] = Counter()
    moments = []
    for update, point in sequence:
        seen[point] += 1
        moments.append(Moment(point, update, seen[point]))
    return moments


def pick(rng: np.random.Generator, ahead: list[Moment], used: set[str]) -> Moment:
    """A point not killed at yet, the rarest ahead first (``best`` may come once only), ties
    drawn; then its first or second pass, drawn (early, to leave moments for later kills)."""
    counts = Counter(m.point for m in ahead)
    fresh = [p for p in counts if p not in used] or list(counts)
    fewest = min(counts[p] for p in fresh)
    rarest = sorted(p for p in fresh if counts[p] == fewest)
    point = rarest[rng.integers(len(rarest))]
    return [m for m in ahead if m.point == point][rng.integers(min(2, counts[point]))]


# -- the test ----------------------------------------------------------------------------------


@pytest.mark.timeout(400)
@pytest.mark.parametrize("task, seed", [("pretrain", 1), ("finetune", 2)])
def test_sigkill_at_seeded_moments_loses_nothing(task, seed, argv_for, tmp_path, monkeypatch,
                                                 capsys):  # fmt: skip
    reference = tmp_path / "reference"
    monkeypatch.setattr(faults, "trace", [])
    assert main(argv_for(task, reference)) == 0
    by_update = points_by_update(faults.trace)
    monkeypatch.setattr(faults, "trace", None)
    assert sorted(by_update) == list(range(1, UPDATES + 1))

    out = tmp_path / "killed"
    argv = argv_for(task, out)
    rng = np.random.default_rng(seed)
    killed: list[Moment] = []
    for k in range(KILLS):
        moment = pick(rng, moments_ahead(by_update, out), {m.point for m in killed})
        resume_from = newest(out)
        code, output = run_forked(argv, f"{moment.point}:{moment.nth}", tmp_path / f"{k}.log")
        assert code == -signal.SIGKILL, f"not killed at {moment}: {output[-2000:]}"
        if resume_from is not None:
            assert f"resuming from {resume_from} (update " in output, output[-2000:]
        killed.append(moment)
    capsys.readouterr()
    resume_from = newest(out)
    assert main(argv) == 0
    assert f"resuming from {resume_from} (update " in capsys.readouterr().out

    points = {m.point for m in killed}
    assert {"update", "checkpoint", "best", "prune"} <= points, killed
    assert task == "finetune" or "swap" in points, killed  # fine-tuning's WER stays at 1
    assert not list(out.rglob(f"{ckpt.TMP_PREFIX}*")), "temporary files left behind"
    want, got = train_losses(reference), train_losses(out)
    assert sorted(got) == list(range(1, UPDATES + 1))
    for update in want:
        assert got[update] == pytest.approx(want[update], rel=1e-6, abs=1e-7), (update, killed)
    for name in (ckpt.BEST, f"{ckpt.PREFIX}{UPDATES:08d}"):
        a, b = (run / "checkpoints" / name for run in (reference, out))
        state_a, state_b = (json.loads((d / ckpt.STATE_FILE).read_text()) for d in (a, b))
        assert state_a["update"] == state_b["update"], (name, killed)
        assert state_a["best_metric"] == pytest.approx(state_b["best_metric"], rel=1e-6)
        weights_a, weights_b = (load_file(str(d / "model.safetensors")) for d in (a, b))
        for key in weights_a:
            assert torch.allclose(weights_a[key], weights_b[key], atol=1e-6), (name, key)

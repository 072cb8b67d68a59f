"""Crash safety of training runs: SIGKILL at seeded moments, and a full disk.

A pretraining run and a fine-tuning run are each killed six times (twelve moments), with the
test hook in ``wav2vec2.faults``, between updates and inside every kind of write: an update
checkpoint, ``best``, the swap that replaces ``best``, the deletion of an old checkpoint, and
the repair of ``best`` on resume. Every rerun must resume from the newest complete checkpoint;
at the end no temporary file may be left, and ``best``, the last checkpoint's weights and every
logged loss must be those of an uninterrupted run.

The moments are drawn (seeded) from the uninterrupted run's own trace of the hook's points,
so each one is known to come: a run resumed at update ``u`` passes the points of updates
``u+1..`` in the same order, after the repair of ``best`` when the kill left one to make.
Killed runs are forked from this process (no new interpreter to start), and every run uses one
thread, so that all of them compute alike.
"""

from __future__ import annotations

import errno
import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import safetensors.torch
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from training_support import (
    DETERMINISTIC,
    TINY_MODEL,
    finetune_argv,
    one_error_line,
    pretrain_argv,
    settings_file,
    train_losses,
)
from wav2vec2 import SMALL, Wav2Vec2Model, faults
from wav2vec2.checkpoint import training_state as ckpt
from wav2vec2.checkpoint.model_dir import read_model_dir
from wav2vec2.cli import main
from wav2vec2.data.sampler import BucketBatchSampler
from wav2vec2.errors import Wav2Vec2Error
from wav2vec2.training.metrics import MetricsWriter

# Every update validates, saves and prunes (keep_last=1), so a few updates pass every moment.
EVERY_UPDATE = {"log_interval": 1, "valid_interval": 1, "save_interval": 1, "keep_last": 1,
                "data.num_workers": 0}  # fmt: skip
PRETRAIN = {**EVERY_UPDATE, **DETERMINISTIC, "data.max_tokens": 48000,
            "data.max_sample_size": 24000, "data.min_sample_size": 16000, "optim.lr": 0.002,
            "schedule.warmup_updates": 2}  # fmt: skip
FINETUNE = {**EVERY_UPDATE, "data.max_tokens": 100000, "model.transformer.layerdrop": 0.0}
UPDATES = 6
KILLS = 6  # per run: twelve in all


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def argv_for(tiny_corpus, tone_corpus, tiny_pretrained, tmp_path):
    """(task, out, updates) -> the command line of that run."""

    def argv(task: str, out: Path, updates: int = UPDATES) -> list[str]:
        if task == "pretrain":
            return pretrain_argv(tiny_corpus, out, settings_file(tmp_path, **PRETRAIN), updates)
        config = settings_file(tmp_path, False, **FINETUNE)
        return finetune_argv(tone_corpus, tiny_pretrained, out, updates, config)

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


def pick(rng: np.random.Generator, ahead: list[Moment], killed: list[Moment]) -> Moment:
    """The first repair of ``best`` ahead, at its last point; otherwise a point not killed at
    yet, the rarest ahead first (``best`` may come once only), ties drawn; then its first or
    second pass, drawn (early, to leave moments for later kills)."""
    repair = [m for m in ahead if m.update == 0]
    if repair and not any(m.update == 0 for m in killed):
        return repair[-1]
    used = {m.point for m in killed}
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
        moment = pick(rng, moments_ahead(by_update, out), killed)
        resume_from = newest(out)
        code, output = run_forked(argv, f"{moment.point}:{moment.nth}", tmp_path / f"{k}.log")
        assert code == -signal.SIGKILL, f"not killed at {moment}: {output[-2000:]}"
        if resume_from is not None and moment.update > 0:  # a repair kill dies before it says
            assert f"resuming from {resume_from} (update " in output, output[-2000:]
        killed.append(moment)
    capsys.readouterr()
    resume_from = newest(out)
    assert main(argv) == 0
    assert f"resuming from {resume_from} (update " in capsys.readouterr().out

    # what the moments were drawn to cover (they depend on the seed and on when WER improves)
    points = {m.point for m in killed}
    assert {"update", "checkpoint", "best", "prune", "swap"} <= points, killed
    assert any(m.update == 0 for m in killed), killed  # inside the repair of best
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


def test_resume_repairs_best_and_sweeps_what_a_kill_left(tmp_path):
    """The windows the kill test hits at random, set up by hand: update 2 recorded itself as
    best, but the copy to ``best`` never happened, or ``best`` was mid-swap (no folder)."""
    model = Wav2Vec2Model(SMALL.with_overrides(**{k[6:]: v for k, v in TINY_MODEL.items()}))
    optimizer = torch.optim.AdamW(model.parameters())
    sampler = BucketBatchSampler([16000], max_tokens=16000, max_sample_size=None, seed=0)

    def save(update: int) -> ckpt.TrainerState:
        state = ckpt.TrainerState(update, 0, 0, float(-update), [], {}, best_update=update)
        ckpt.save_checkpoint(tmp_path, model, optimizer, None, sampler, state, vocab=None,
                             run_config={})  # fmt: skip
        return state

    first = save(1)
    ckpt.mark_best(tmp_path, ckpt.checkpoint_dir(tmp_path, 1))
    assert ckpt.repair_best(tmp_path, first) is None  # best is right: nothing to do
    state = save(2)
    (tmp_path / "checkpoints" / ".tmp-best.1.a").mkdir()  # a copy under way
    (tmp_path / "checkpoints" / ".tmp-update_00000001.1.b").mkdir()  # a prune under way
    (tmp_path / ".tmp-run.json.1.c").write_text("half")
    ckpt.sweep_temp(tmp_path)
    assert not list(tmp_path.rglob(".tmp-*"))
    assert ckpt.held_by_best(tmp_path) == 1
    assert ckpt.repair_best(tmp_path, state) is not None and ckpt.held_by_best(tmp_path) == 2
    shutil.rmtree(tmp_path / "checkpoints" / ckpt.BEST)  # killed between replace_dir's renames
    assert ckpt.repair_best(tmp_path, state) is not None and ckpt.held_by_best(tmp_path) == 2


# -- a full disk -------------------------------------------------------------------------------
FULL = "cannot write (No space left on device); what was there before is unchanged. "


def assert_whole(checkpoint: Path) -> None:
    """A checkpoint that a resume can load: model directory and training state."""
    read_model_dir(checkpoint)
    json.loads((checkpoint / ckpt.STATE_FILE).read_text())
    load_file(str(checkpoint / ckpt.TENSORS_FILE))


def assert_stopped_at_3_then_resumes(out, argv_for, capsys, free_space) -> None:
    """A run saved update 2, was asked for 4 and found no room for update 3: one line, exit
    2, update 2 whole, nothing left over; with room again, the same command finishes."""
    checkpoints = out / "checkpoints"
    line = one_error_line(capsys)
    assert line == (
        # the file that did not fit, named inside the folder the user will look for
        f"wav2vec2 pretrain: error: {checkpoints / 'update_00000003' / 'model.safetensors'}: "
        f"{FULL}Training stopped "
        f"at update 3; once that is fixed, re-run the same command to resume from "
        f"{checkpoints / 'update_00000002'}"
    )
    assert sorted(p.name for p in checkpoints.iterdir()) == ["best", "update_00000002"]
    assert_whole(checkpoints / "update_00000002")
    free_space()
    assert main(argv_for("pretrain", out, 4)) == 0
    assert f"resuming from {checkpoints / 'update_00000002'} (update 2)" in capsys.readouterr().out
    assert sorted(train_losses(out)) == [1, 2, 3, 4]
    assert sorted(p.name for p in checkpoints.iterdir()) == ["best", "update_00000004"]
    assert not list(out.rglob(f"{ckpt.TMP_PREFIX}*"))


def test_refused_checkpoint_write_stops_the_run_with_one_line(argv_for, tmp_path, monkeypatch,
                                                              capsys):  # fmt: skip
    out = tmp_path / "run"
    assert main(argv_for("pretrain", out, 2)) == 0
    real_save = safetensors.torch.save_file

    def disk_full(tensors, path, metadata=None):  # half a file, then safetensors on ENOSPC
        Path(path).write_bytes(b"half")
        raise SafetensorError("Error while serializing: I/O error: No space left on device "
                              "(os error 28)")  # fmt: skip

    monkeypatch.setattr(safetensors.torch, "save_file", disk_full)
    capsys.readouterr()
    assert main(argv_for("pretrain", out, 4)) == 2
    assert_stopped_at_3_then_resumes(
        out,
        argv_for,
        capsys,
        lambda: monkeypatch.setattr(safetensors.torch, "save_file", real_save),
    )


def test_refused_log_line_names_the_log(tmp_path, monkeypatch):
    writer = MetricsWriter(tmp_path, tensorboard=False)
    writer.write("train", 1, {"loss": 1.0})

    def disk_full(text):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(writer, "_file", SimpleNamespace(write=disk_full, close=lambda: None))
    with pytest.raises(Wav2Vec2Error) as info:
        writer.write("train", 2, {"loss": 0.5})
    assert str(info.value) == (
        f"{tmp_path / 'log.jsonl'}: cannot write (No space left on device); what was there "
        "before is unchanged"
    )
    assert train_losses(tmp_path) == {1: 1.0}


@pytest.fixture
def small_disk(tmp_path):
    """A 16 MiB tmpfs to fill; skipped where mounting is not permitted (tests run as root)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mount = shutil.which("mount")
    done = mount and subprocess.run([mount, "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(disk)],
                                    capture_output=True, text=True)  # fmt: skip
    if not done or done.returncode != 0:
        reason = done.stderr.strip() if done else "no mount command"
        pytest.skip(f"a small disk needs mount -t tmpfs (root or CAP_SYS_ADMIN): {reason}")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def fill(disk: Path, leave: int) -> Path:
    """Take all but ``leave`` bytes of ``disk`` with one file; return it."""
    filler = disk / "filler"
    stat = os.statvfs(disk)
    with open(filler, "wb") as f:
        os.posix_fallocate(f.fileno(), 0, stat.f_bavail * stat.f_frsize - leave)
    return filler


def test_full_disk_stops_the_run_with_one_line_and_the_rerun_continues(small_disk, argv_for,
                                                                       capsys):  # fmt: skip
    out = small_disk / "run"
    assert main(argv_for("pretrain", out, 2)) == 0
    filler = fill(small_disk, leave=256 * 1024)  # room for the log, not for a checkpoint
    capsys.readouterr()
    assert main(argv_for("pretrain", out, 4)) == 2
    assert_stopped_at_3_then_resumes(out, argv_for, capsys, filler.unlink)

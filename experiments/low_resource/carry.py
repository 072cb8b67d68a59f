"""Carry the low-resource run from one machine to the next through the repository.

The run takes longer than a session, and a later session may start on a fresh machine with
an empty ``work/`` (that happened on 2026-12-07: 29 500 updates of pretraining were lost).
``save_carry`` copies what the run cannot rebuild into ``experiments/low_resource/carry``,
which is committed; ``restore_carry`` puts it back into an empty ``work/``. The corpus and
the LM are not carried: they are rebuilt (about 4 minutes; TTS is deterministic), and the
restored state is refused unless the rebuilt corpus has the carried SHA-256, so a resumed
sampler never walks a different corpus.

What is carried of each training run (``pretrain`` and every ``finetune/<run>``): its
``run.json`` and ``log.jsonl`` (the curves and the wall-clock times), ``finished.json`` and
``eval/`` when present, ``checkpoints/best`` (of an evaluated fine-tuning run only while
it is the best by dev WER, the one the report exports), and the newest ``checkpoints/update_*`` (the
exact resume point: weights, optimizer, RNGs, sampler) unless the run has finished (its
``finished.json``: the pretraining's is written by run.py, the grid's by grid.py). The
TensorBoard events are not carried; the curves are drawn from ``log.jsonl``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from report import best_run
from scoring import RESULTS

from wav2vec2.atomic import atomic_dir, write_text_atomic
from wav2vec2.checkpoint.training_state import BEST, list_checkpoints
from wav2vec2.errors import Wav2Vec2Error

TOP_FILES = ("plan.json", "wall_clock.json", "finetune/grid.json")
RUN_FILES = ("run.json", "log.jsonl", "finished.json")
DIGEST = "corpus.sha256"


def corpus_digest(corpus: Path) -> str:
    """SHA-256 over every file of the corpus folder: its relative path, then its bytes (a
    manifest's first line, the folder's absolute path, left out: the corpus may move)."""
    h = hashlib.sha256()
    for path in sorted(p for p in corpus.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(corpus)).encode() + b"\0")
        with open(path, "rb") as f:
            if path.suffix == ".tsv":
                f.readline()
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def run_dirs(work: Path) -> list[Path]:
    """The training runs under ``work``: the pretraining, then each fine-tuning run."""
    found = [work / "pretrain"] if (work / "pretrain" / "run.json").is_file() else []
    return found + sorted(p.parent for p in (work / "finetune").glob("*/run.json"))


def _copy(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    if src.is_dir():
        shutil.copytree(src, dest)
    else:
        shutil.copy2(src, dest)


def _scored(work: Path) -> dict[str, dict]:
    """{run name: eval/results.json} of the fine-tuning runs evaluated so far."""
    found = (work / "finetune").glob(f"*/eval/{RESULTS}")
    return {p.parent.parent.name: json.loads(p.read_text()) for p in found}


def _run_parts(run: Path, drop_best: bool) -> list[Path]:
    parts = [run / name for name in RUN_FILES if (run / name).is_file()]
    if (run / "eval").is_dir():
        parts.append(run / "eval")
    if (run / "checkpoints" / BEST).is_dir() and not drop_best:
        parts.append(run / "checkpoints" / BEST)
    newest = list_checkpoints(run)
    if newest and not (run / "finished.json").is_file():
        parts.append(newest[-1])
    return parts


def save_carry(work: Path, carry: Path) -> list[Path]:
    """Replace ``carry`` (whole, atomically) with what ``work`` cannot rebuild; returns the
    paths carried, relative to ``work``. Pause the run first (``pkill -STOP``): a checkpoint
    pruned mid-copy fails the save and leaves the old ``carry`` as it was."""
    if not (work / "corpus" / "corpus.json").is_file():
        raise Wav2Vec2Error("no corpus here yet: nothing to carry", work)
    parts = [work / name for name in TOP_FILES if (work / name).is_file()]
    scored = _scored(work)
    best = best_run(scored) if scored else None
    for run in run_dirs(work):
        # once evaluated, a fine-tuning run's model is needed again only if it is the best
        # (report.py exports it and reads its alignments)
        parts += _run_parts(run, drop_best=run.name in scored and run.name != best)
    with atomic_dir(carry) as tmp:
        for part in parts:
            _copy(part, tmp / part.relative_to(work))
        write_text_atomic(tmp / DIGEST, corpus_digest(work / "corpus") + "\n")
    return [p.relative_to(work) for p in parts]


def restore_carry(carry: Path, work: Path) -> list[Path]:
    """Copy ``carry`` into ``work`` when ``work`` holds no training run yet (a fresh
    machine); returns what was restored (nothing when ``work`` already has a run, so a run
    in place is never overwritten). Call it before the corpus is built, and
    :func:`check_corpus` once it is."""
    if not carry.is_dir() or run_dirs(work) or (work / "plan.json").exists():
        return []
    restored = []
    for src in sorted(carry.rglob("*")):
        rel = src.relative_to(carry)
        if src.is_file() and str(rel) != DIGEST:
            _copy(src, work / rel)
            restored.append(rel)
    shutil.copy2(carry / DIGEST, work / DIGEST)
    return restored


def check_corpus(work: Path) -> None:
    """After a restore, refuse to go on unless the rebuilt corpus is the carried one."""
    expected_file = work / DIGEST
    if not expected_file.is_file():
        return
    expected = expected_file.read_text().strip()
    actual = corpus_digest(work / "corpus")
    if actual != expected:
        raise Wav2Vec2Error(
            f"the rebuilt corpus differs from the carried one (SHA-256 {actual[:12]} against "
            f"{expected[:12]}): the carried checkpoints cannot resume on it; use another --out",
            work / "corpus",
        )
    expected_file.unlink()
    print(json.dumps({"corpus": "same as the carried one", "sha256": actual}))

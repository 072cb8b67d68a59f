"""``--output-dir`` as ``transcribe`` and ``align`` use it: one file per input, a rerun skips
inputs whose file exists, and a last line counts what was done."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TypeVar

from wav2vec2.errors import Wav2Vec2Error
from wav2vec2.inputs import Input

T = TypeVar("T")


def plan_outputs(
    output_dir: Path | None, jobs: list[T], input_of, ext: str
) -> tuple[dict[Path, Path] | None, list[T]]:
    """({input path: its output file}, the jobs still to do); (None, all jobs) without an
    output folder. ``input_of(job)`` is the job's :class:`Input`."""
    if output_dir is None:
        return None, jobs
    if output_dir.exists() and not output_dir.is_dir():
        raise Wav2Vec2Error("is a file; --output-dir needs a folder", output_dir)
    items: list[Input] = [input_of(job) for job in jobs]
    outputs = {i.path: output_dir / f"{i.name}.{ext}" for i in items}
    return outputs, [job for job, i in zip(jobs, items) if not outputs[i.path].exists()]


def print_summary(verb: str, done_as: str, total: int, todo: int, failed: int, where: Path):
    """``wav2vec2 VERB: N <done_as>, M skipped (output exists), K failed -> DIR``."""
    summary = f"{todo - failed} {done_as}, {total - todo} skipped (output exists), {failed} failed"
    print(f"wav2vec2 {verb}: {summary} -> {where}", file=sys.stderr)

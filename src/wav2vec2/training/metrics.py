"""Metric sinks: a JSONL log (the source of truth for plots) and TensorBoard."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from wav2vec2.atomic import write_failed, write_text_atomic

LOG_FILE = "log.jsonl"


class MetricsWriter:
    """Appends one JSON object per record to ``RUN_DIR/log.jsonl`` and mirrors scalars to
    TensorBoard under ``RUN_DIR/tensorboard``. On resume, records after the checkpoint's
    update (written by the interrupted run) are dropped so the log has no duplicates."""

    def __init__(self, run_dir: Path, resume_update: int | None = None, tensorboard: bool = True):
        self.path = run_dir / LOG_FILE
        if resume_update is not None and self.path.exists():
            kept = [r for r in read_log(self.path) if r.get("update", 0) <= resume_update]
            write_text_atomic(self.path, "".join(json.dumps(r) + "\n" for r in kept))
        elif resume_update is None and self.path.exists():
            self.path.unlink()
        self._file = open(self.path, "a", buffering=1)  # noqa: SIM115 -- closed in close()
        self._tb = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(
                str(run_dir / "tensorboard"), purge_step=resume_update if resume_update else None
            )

    def write(self, split: str, update: int, values: dict[str, Any]) -> None:
        record = {"split": split, "update": update, **values}
        try:
            self._file.write(json.dumps(record) + "\n")
        except OSError as exc:  # disk full: one line naming the log (a torn line is ignored)
            raise write_failed(exc, self.path) from None
        if self._tb is not None:
            for key, value in values.items():
                if isinstance(value, int | float) and math.isfinite(value):
                    self._tb.add_scalar(f"{split}/{key}", value, update)

    def close(self) -> None:
        self._file.close()
        if self._tb is not None:
            self._tb.close()


def read_log(path: Path) -> list[dict[str, Any]]:
    """Records of a JSONL log; a torn last line (kill -9 mid-write) is ignored."""
    records = []
    for line in Path(path).read_text().splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records


def training_seconds(records: list[dict[str, Any]]) -> float:
    """Wall-clock seconds a run spent, from its log alone: each training record covers the
    updates since the one before, and holds their mean ``audio_seconds`` per update and the
    window's ``audio_seconds_per_second``, so the window lasted ``updates * audio_seconds /
    audio_seconds_per_second``. A window opens when the previous record is written, so the
    validations and checkpoints that follow a record are counted in the next one. The log
    survives kills (a resumed run keeps the records up to its checkpoint), so the sum covers
    every session; only the minutes between a killed run's last checkpoint and the kill,
    and each start-up before the first update, are left out."""
    total, previous = 0.0, 0
    for r in records:
        if r.get("split") != "train":
            continue
        updates = r["update"] - previous
        previous = r["update"]
        rate = r.get("audio_seconds_per_second", 0.0)
        if updates > 0 and rate > 0:
            total += updates * r.get("audio_seconds", 0.0) / rate
    return total

"""A full disk for the tests of what a command does when a write fails: faked by
monkeypatching, or real (a small tmpfs, which only root may mount)."""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

NO_SPACE = os.strerror(errno.ENOSPC)  # "No space left on device"


def no_space_under(monkeypatch: pytest.MonkeyPatch, disk: Path) -> None:
    """Make every new file under DISK fail as on a full disk. The failure comes at the
    ``os.replace`` that puts a written file in place, the one step every write of
    ``wav2vec2.atomic`` shares (renames of whole folders, which need no space, still work);
    :func:`tmpfs` covers a write that fails part way."""
    disk = Path(disk).resolve()
    real_replace = os.replace

    def replace(src, dst, *args, **kwargs):
        target = Path(dst).resolve()
        if target == disk or disk in target.parents:
            raise OSError(errno.ENOSPC, NO_SPACE)
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)


@contextmanager
def tmpfs(path: Path, size: str = "1m") -> Iterator[Path]:
    """A tmpfs of SIZE mounted at PATH for the block; the test is skipped, saying why, where
    mounting is not permitted (not root, or no mount in a container)."""
    path.mkdir(parents=True, exist_ok=True)
    mount = ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)]
    try:
        done = subprocess.run(mount, capture_output=True, text=True, timeout=30)
    except OSError as exc:
        pytest.skip(f"cannot run mount for a real full disk: {exc}")
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs for a real full disk: {done.stderr.strip()}")
    try:
        yield path
    finally:
        # Lazily: a model file the test read may still be mapped until garbage collection.
        subprocess.run(["umount", "--lazy", str(path)], capture_output=True, timeout=30)


def fill(disk: Path) -> None:
    """Take every free byte of DISK's file system (unbuffered, so that the last short write
    is not retried at close)."""
    with open(disk / "filler", "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every file under FOLDER with its bytes, and every folder (None): what must not change,
    temporary leftovers included. The filler is left out."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() if p.is_file() else None
        for p in sorted(folder.rglob("*"))
        if p.name != "filler"
    }

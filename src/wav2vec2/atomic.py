"""Writes that readers never see half done: files and folders are put in place by rename.

Temporary names are made here rather than by ``tempfile.mkstemp`` / ``mkdtemp``, which
create files 0600 and folders 0700 whatever the umask: a model, corpus, LM or report
written through them would be unreadable to everyone but its owner (another user, a
service account, a shared group folder). safetensors' ``save_file`` also writes 0600, so
each finished file is given the mode the umask allows a new file.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from wav2vec2.errors import Wav2Vec2Error
from wav2vec2.faults import fault_point

TMP_PREFIX = ".tmp-"  # every temporary name starts so; a sweep may delete what a killed run left


def temp_path(dest: str | Path) -> Path:
    """A fresh, unused name beside ``dest`` (same folder, so a rename is atomic)."""
    dest = Path(dest)
    return dest.with_name(f"{TMP_PREFIX}{dest.name}.{os.getpid()}.{secrets.token_hex(4)}")


def _umask() -> int:
    try:  # Linux: read it without changing it (os.umask can only set, and races threads)
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


class WriteFailed(Wav2Vec2Error):
    """A write the system refused (disk full, read-only, a folder where a file goes, no
    permission): what failed and that nothing there was changed."""

    def __init__(self, reason: str, path: str | Path) -> None:
        super().__init__(f"cannot write ({reason}); what was there before is unchanged", path)
        self.reason = reason


def write_failed(exc: OSError, path: str | Path) -> WriteFailed:
    """The one error for an ``OSError`` raised while writing ``path``."""
    reason = exc.strerror or str(exc)
    if exc.filename and Path(exc.filename) != Path(path) and exc.strerror:
        reason = f"{exc.strerror}: {exc.filename}"
    return WriteFailed(reason, path)


def _make_parent(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_failed(exc, path) from None


def atomic_write(path: str | Path, write: Callable[[Path], object]) -> None:
    """Call ``write(tmp)`` to create a file at the temporary path ``tmp``, then rename it
    over ``path``. On any failure the temporary file goes and ``path`` is untouched; a
    failure of the system (``OSError``: disk full, a folder at ``path``) becomes one
    :class:`Wav2Vec2Error` naming ``path``."""
    path = Path(path)
    if path.is_dir():
        raise Wav2Vec2Error("is a folder; give a file path", path)
    _make_parent(path)
    tmp = temp_path(path)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise write_failed(exc, path) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write UTF-8 ``text`` (newlines as written) to ``path`` atomically."""
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8", newline="\n"))


def make_temp_dir(dest: str | Path) -> Path:
    """Create an empty folder beside ``dest``, to fill and then pass to ``replace_dir``."""
    dest = Path(dest)
    _make_parent(dest)
    tmp = temp_path(dest)
    try:
        tmp.mkdir()
    except OSError as exc:
        raise write_failed(exc, dest) from None
    return tmp


@contextmanager
def atomic_dir(dest: str | Path) -> Iterator[Path]:
    """``with atomic_dir(dest) as tmp:`` fill the empty folder ``tmp``; when the block ends
    without error it replaces ``dest`` whole (see :func:`replace_dir`). On any failure the
    partial folder goes, ``dest`` is untouched, and an ``OSError`` (disk full, no
    permission) becomes one :class:`Wav2Vec2Error` naming ``dest``."""
    dest = Path(dest)
    if dest.exists() and not dest.is_dir():
        raise Wav2Vec2Error("is a file; give a folder path", dest)
    tmp = make_temp_dir(dest)
    try:
        yield tmp
        replace_dir(tmp, dest)
    except OSError as exc:
        raise write_failed(exc, dest) from None
    except WriteFailed as exc:
        # A file written atomically inside the folder failed: its name is a temporary one
        # that is about to vanish, so the user is told about the folder they asked for.
        if exc.path is not None and Path(exc.path).is_relative_to(tmp):
            raise WriteFailed(exc.reason, dest) from None
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def replace_dir(tmp: Path, dest: Path) -> None:
    """Put the complete folder ``tmp`` at ``dest``. An existing ``dest`` is moved aside
    first, put back if the final rename fails (or Ctrl-C lands between the two), and deleted
    once the new one is in place.

    A folder cannot be renamed over a non-empty one, so there is a moment with no ``dest``:
    a kill there leaves both versions under temporary names, which the next sweep deletes.
    A caller whose ``dest`` must survive a crash has to be able to rebuild it (the trainer
    re-marks ``checkpoints/best`` on resume)."""
    old = None
    try:
        if dest.exists():
            old = temp_path(dest)
            dest.rename(old)
        fault_point("swap")
        tmp.rename(dest)
    except BaseException:
        if old is not None and old.exists() and not dest.exists():
            old.rename(dest)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)

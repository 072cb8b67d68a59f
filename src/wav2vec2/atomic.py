"""Writes that readers never see half done: files and folders are put in place by rename.

Temporary names are made here rather than by ``tempfile.mkstemp`` / ``mkdtemp``, which
create files 0600 and folders 0700 whatever the umask: a model, corpus, LM or report
written through them would be unreadable to everyone but its owner (another user, a
service account, a shared group folder). safetensors' ``save_file`` also writes 0600, so
each finished file is given the mode the umask allows a new file.
"""

from __future__ import annotations

import os
import re
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


def _check_parents(path: Path) -> None:
    """Refuse a path that lies under a file (``notes.txt/out.npy``): mkdir would fail later
    with a bare "File exists" or "Not a directory"."""
    for parent in path.parents:  # nearest first; the first that exists decides
        if parent.exists():
            if not parent.is_dir():
                raise Wav2Vec2Error(f"{parent} is a file, not a folder", path)
            return


def check_file_dest(path: str | Path) -> None:
    """Refuse, before any work is done, a file output that names a folder or lies under a
    file. (:func:`atomic_write` checks again; commands call this first so that an hour of
    work does not end in an error they could have given at once.)"""
    path = Path(path)
    if path.is_dir():
        raise Wav2Vec2Error("is a folder; give a file path", path)
    _check_parents(path)


def check_dir_dest(path: str | Path) -> None:
    """Refuse, before any work is done, a folder output that names a file or lies under one."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise Wav2Vec2Error("is a file; give a folder path", path)
    _check_parents(path)


def ensure_dir(path: str | Path) -> None:
    """Create the folder ``path`` (and its parents) if needed; a refusal of the system is one
    :class:`Wav2Vec2Error` naming it."""
    path = Path(path)
    check_dir_dest(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_failed(exc, path) from None


def check_replaceable_dir(dest: str | Path, is_ours: Callable[[Path], bool], what: str) -> None:
    """Refuse to write over a folder that the writer did not make: ``dest`` may be absent,
    empty, or what ``is_ours`` recognizes as an earlier output of the same writer (``what``
    names it in the error). Anything else in it may be someone's data."""
    dest = Path(dest)
    check_dir_dest(dest)
    if not dest.exists():
        return
    entries = sorted(p.name for p in dest.iterdir())
    if not entries or is_ours(dest):
        return
    shown = ", ".join(entries[:4]) + (f", ... ({len(entries)} entries)" if len(entries) > 4 else "")
    raise Wav2Vec2Error(
        f"exists and is not {what} (it holds {shown}); give a new or empty folder", dest
    )


def atomic_write(path: str | Path, write: Callable[[Path], object]) -> None:
    """Call ``write(tmp)`` to create a file at the temporary path ``tmp``, then rename it
    over ``path``. On any failure the temporary file goes and ``path`` is untouched; a
    failure of the system (``OSError``: disk full, a folder at ``path``) becomes one
    :class:`Wav2Vec2Error` naming ``path``."""
    path = Path(path)
    check_file_dest(path)
    ensure_dir(path.parent)
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


def write_safetensors_atomic(
    path: str | Path, tensors: dict, metadata: dict[str, str] | None = None
) -> None:
    """safetensors' ``save_file``, atomically. It reports a full disk as its own
    ``SafetensorError`` ("... No space left on device (os error 28)"), which is turned back
    into the ``OSError`` it was, so that the message is :func:`write_failed`'s."""
    from safetensors import SafetensorError
    from safetensors.torch import save_file

    def write(tmp: Path) -> None:
        try:
            save_file(tensors, str(tmp), metadata)
        except SafetensorError as exc:
            code = re.search(r"os error (\d+)", str(exc))
            if code is None:
                raise
            raise OSError(int(code[1]), os.strerror(int(code[1]))) from None

    atomic_write(path, write)


def write_npy_atomic(path: str | Path, array) -> None:
    """A ``.npy`` file, atomically. ``np.save`` writes through ``ndarray.tofile``, which
    reports a full disk as "N requested and M written" with no errno; a plain ``write``
    of the same bytes raises ENOSPC, which :func:`write_failed` names."""
    import numpy as np

    array = np.asarray(array)
    if not array.flags.c_contiguous:  # (ascontiguousarray would also make a 0-d array 1-d)
        array = np.ascontiguousarray(array)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            header = np.lib.format.header_data_from_array_1_0(array)
            np.lib.format.write_array_header_1_0(f, header)
            f.write(array.reshape(-1).view(np.uint8).data)  # the data as bytes, no copy

    atomic_write(path, write)


def make_temp_dir(dest: str | Path) -> Path:
    """Create an empty folder beside ``dest``, to fill and then pass to ``replace_dir``."""
    dest = Path(dest)
    ensure_dir(dest.parent)
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
    check_dir_dest(dest)
    tmp = make_temp_dir(dest)
    try:
        yield tmp
        replace_dir(tmp, dest)
    except OSError as exc:
        raise _public(write_failed(exc, exc.filename or dest), tmp, dest) from None
    except Wav2Vec2Error as exc:  # a write inside the block failed: name where it was going
        raise _public(exc, tmp, dest) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def atomic_files(folder: str | Path) -> Iterator[Path]:
    """``with atomic_files(folder) as stage:`` write files into the empty folder ``stage``;
    when the block ends without error, each file in it replaces its namesake in ``folder``
    (created if needed) and nothing else in ``folder`` is touched. On any failure none of
    them is put in place, a ``folder`` this call created is removed again, and an
    ``OSError`` becomes one :class:`Wav2Vec2Error` naming the file in ``folder``.

    For files that belong together (a split's manifest and labels; an LM, its lexicon and
    its record) in a folder that may hold other things. The stage lies inside ``folder``, so
    the renames never cross file systems, even when ``folder`` is a mount point. Folders
    made in the stage are scratch space: they are deleted, not moved."""
    folder = Path(folder)
    created = not folder.exists()
    ensure_dir(folder)
    stage = make_temp_dir(folder / "stage")
    done = False
    try:
        yield stage
        names = sorted(p.name for p in stage.iterdir() if p.is_file())
        for name in names:  # all checked before any is moved: none or all land
            check_file_dest(folder / name)
        for name in names:
            try:
                os.replace(stage / name, folder / name)
            except OSError as exc:
                raise write_failed(exc, folder / name) from None
        done = True
    except OSError as exc:
        raise _public(write_failed(exc, exc.filename or folder), stage, folder) from None
    except Wav2Vec2Error as exc:
        raise _public(exc, stage, folder) from None
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        if created and not done:
            try:
                folder.rmdir()  # only if empty: never delete what another writer put there
            except OSError:
                pass


def _public(exc: Wav2Vec2Error, tmp: Path, dest: Path) -> Wav2Vec2Error:
    """The same error, naming the path the user asked for instead of its temporary stand-in
    (``.tmp-NAME.PID.HEX/x`` -> ``NAME/x``)."""
    if exc.path is None:
        return exc
    path = Path(exc.path)
    if path == tmp or tmp in path.parents:
        path = dest / path.relative_to(tmp)
    if isinstance(exc, WriteFailed):  # keep its kind: the trainer stops on it
        return WriteFailed(exc.reason.replace(str(tmp), str(dest)), path)
    message = str(exc).removeprefix(f"{exc.path}: ").replace(str(tmp), str(dest))
    return Wav2Vec2Error(message, path)


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

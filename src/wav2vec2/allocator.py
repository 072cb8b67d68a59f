"""Run the command under tcmalloc when it is installed (Debian ``libtcmalloc-minimal4``).

glibc malloc returns large freed blocks to the kernel, so every forward pass page-faults its
activations in again (about 100k faults per BASE inference, 1M per training step on this
project's 2-core test machine); tcmalloc keeps them. The allocator has to be in place before
the process starts, so the ``wav2vec2`` command re-executes itself once with ``LD_PRELOAD``
set. ``WAV2VEC2_NO_TCMALLOC=1`` turns that off. Measured effect: docs/benchmarks.md.

This module imports nothing heavy: the CLI calls :func:`reexec_with_tcmalloc` before torch is
imported, so the first process costs a few milliseconds.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Debian/Ubuntu's path (x86-64); the package is libtcmalloc-minimal4.
TCMALLOC = Path("/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4")
OPT_OUT = "WAV2VEC2_NO_TCMALLOC"
# Set in the re-executed process: it never re-executes again, even when the preload failed.
_MARKER = "WAV2VEC2_TCMALLOC_REEXEC"


def allocator_in_use() -> str:
    """'tcmalloc' when it is mapped into this process, else 'glibc malloc'."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return "unknown"
    return "tcmalloc" if "tcmalloc" in maps else "glibc malloc"


def preload_env(env: dict[str, str], allocator: str) -> dict[str, str]:
    """A copy of ``env`` for a child process that runs under ``allocator`` ('tcmalloc' or
    'glibc'): LD_PRELOAD set to tcmalloc, or cleared."""
    env = dict(env)
    env.pop("LD_PRELOAD", None)
    if allocator == "tcmalloc":
        env["LD_PRELOAD"] = str(TCMALLOC)
        # tcmalloc prints a line for every allocation above 1 GiB by default.
        env.setdefault("TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD", str(1 << 40))
    return env


def wants_reexec(env: dict[str, str] | os._Environ[str] = os.environ) -> bool:
    """Whether the command should re-execute itself under tcmalloc: the library exists, the
    user did not opt out, this is not already the re-executed process, and no LD_PRELOAD
    of the user's is in place (it is left alone)."""
    return (
        TCMALLOC.is_file()
        and env.get(OPT_OUT, "") in ("", "0")
        and _MARKER not in env
        and not env.get("LD_PRELOAD")
        and sys.platform == "linux"
    )


def reexec_with_tcmalloc() -> None:
    """Replace this process by the same command under tcmalloc, when :func:`wants_reexec`.
    Returns (doing nothing) otherwise, or when the exec fails."""
    if not wants_reexec() or allocator_in_use() == "tcmalloc":
        return
    env = preload_env(dict(os.environ), "tcmalloc")
    env[_MARKER] = "1"
    argv = list(getattr(sys, "orig_argv", [])) or [sys.executable, *sys.argv]
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(sys.executable, [sys.executable, *argv[1:]], env)
    except OSError:
        return  # e.g. the interpreter vanished: carry on under glibc malloc

"""A test hook: SIGKILL this process at a named moment, to prove that a crash loses nothing.

``WAV2VEC2_FAULT_AT=NAME:N`` makes the N-th call of ``fault_point(NAME)`` in this process
send SIGKILL to itself. Nothing runs after it (no ``finally``, no ``atexit``), exactly as
when the OOM killer, a scheduler or a power cut stops a run there. The moments are:

- ``update``: after an optimizer update, between checkpoints;
- ``checkpoint``: inside a checkpoint's temporary folder, its model files written;
- ``best``: inside ``best``'s temporary folder, its files copied;
- ``swap``: a folder being replaced (``atomic.replace_dir``) has been moved aside and its
  new version is not yet in place, so neither is under the real name;
- ``prune``: an old checkpoint has been renamed for deletion but not yet deleted.

Unset (always, outside tests) a point costs one environment lookup. A test that wants to know
which moments a run passes, in order, sets ``faults.trace = []`` before running it.
"""

from __future__ import annotations

import os
import signal

ENV = "WAV2VEC2_FAULT_AT"
_hits: dict[str, int] = {}  # calls per point, counted only while the variable is set
trace: list[str] | None = None  # a test sets a list here to record the points a run passes


def fault_point(name: str) -> None:
    if trace is not None:
        trace.append(name)
    spec = os.environ.get(ENV)
    if not spec:
        return
    target, _, nth = spec.partition(":")
    if target != name:
        return
    _hits[name] = _hits.get(name, 0) + 1
    if _hits[name] == int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)

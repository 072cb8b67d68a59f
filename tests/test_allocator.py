"""The command re-executes itself once under tcmalloc (wav2vec2.allocator), never in a loop,
and not when the user opts out or preloads something of their own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import wav2vec2
from wav2vec2 import allocator

SRC = str(Path(wav2vec2.__file__).parent.parent)
# What the CLI does first, then which allocator the process ended up with.
PROBE = (
    "from wav2vec2.allocator import allocator_in_use, reexec_with_tcmalloc; "
    "reexec_with_tcmalloc(); import os; "
    "print(allocator_in_use(), os.environ.get('WAV2VEC2_TCMALLOC_REEXEC'))"
)


def run_probe(**env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("WAV2VEC2_", "LD_PRE"))}
    clean["PYTHONPATH"] = SRC
    proc = subprocess.run(
        [sys.executable, "-c", PROBE], env={**clean, **env}, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_the_package_imports_no_torch_for_the_cli():
    code = "import sys, wav2vec2.cli; print('torch' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": SRC},
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert out.strip() == "False"
    assert set(wav2vec2.__all__) == set(wav2vec2._EXPORTS)
    assert wav2vec2.Wav2Vec2Model.__name__ == "Wav2Vec2Model"


def test_wants_reexec(monkeypatch, tmp_path):
    lib = tmp_path / "libtcmalloc_minimal.so.4"
    lib.write_bytes(b"")
    monkeypatch.setattr(allocator, "TCMALLOC", lib)
    assert allocator.wants_reexec({})
    assert allocator.wants_reexec({"WAV2VEC2_NO_TCMALLOC": "0"})
    assert not allocator.wants_reexec({"WAV2VEC2_NO_TCMALLOC": "1"})
    assert not allocator.wants_reexec({"WAV2VEC2_TCMALLOC_REEXEC": "1"})  # no loop
    assert not allocator.wants_reexec({"LD_PRELOAD": "/usr/lib/libjemalloc.so"})
    lib.unlink()
    assert not allocator.wants_reexec({})


@pytest.mark.skipif(not allocator.TCMALLOC.is_file(), reason="libtcmalloc-minimal4 absent")
def test_reexec_once_under_tcmalloc_and_opt_out():
    assert run_probe() == "tcmalloc 1"
    assert run_probe(WAV2VEC2_NO_TCMALLOC="1") == "glibc malloc None"
    # A process that was already re-executed never tries again, even when the preload did
    # not take (here: no LD_PRELOAD at all).
    assert run_probe(WAV2VEC2_TCMALLOC_REEXEC="1") == "glibc malloc 1"

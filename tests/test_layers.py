"""Where things live: each part of the package imports only the parts below it (README,
"Where things live"). Read from the source, function-level imports included."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import wav2vec2

PACKAGE = Path(wav2vec2.__file__).parent

# part -> parts it must not import. A part is a subpackage (models, training, ...) or a
# top-level module (inference, loading, ...).
FORBIDDEN = {
    "models": {"checkpoint", "interop", "loading", "conversion", "training", "data", "corpus",
               "inference", "evaluation", "demo", "cli"},
    "checkpoint": {"interop", "loading", "conversion", "training", "data", "corpus",
                   "inference", "evaluation", "demo", "cli"},
    "interop": {"loading", "conversion", "training", "data", "corpus", "inference",
                "evaluation", "demo", "cli"},
    "data": {"models", "checkpoint", "interop", "loading", "conversion", "training", "corpus",
             "inference", "evaluation", "demo", "cli"},
    "corpus": {"models", "checkpoint", "interop", "loading", "conversion", "training",
               "inference", "evaluation", "demo", "cli"},
    "training": {"interop", "loading", "conversion", "corpus", "inference", "evaluation",
                 "demo", "cli"},
    "loading": {"conversion", "training", "data", "corpus", "inference", "evaluation", "demo",
                "cli"},
    "conversion": {"training", "data", "corpus", "inference", "evaluation", "demo", "cli"},
    "alignment": {"models", "checkpoint", "interop", "loading", "conversion", "training", "data",
                  "corpus", "inference", "evaluation", "demo", "cli"},
    "textfile": {"models", "checkpoint", "interop", "loading", "conversion", "training", "data",
                 "corpus", "inference", "evaluation", "demo", "cli", "vocab", "audio"},
    "chunking": {"models", "checkpoint", "interop", "loading", "conversion", "training", "data",
                 "corpus", "inference", "evaluation", "demo", "cli"},
    "worker_pool": {"models", "checkpoint", "interop", "loading", "conversion", "training",
                    "data", "corpus", "inference", "evaluation", "demo", "cli", "decoding",
                    "beam_search"},
    "audio_stream": {"models", "checkpoint", "interop", "loading", "conversion", "training",
                     "data", "corpus", "inference", "evaluation", "demo", "cli"},
    "timestamps": {"models", "checkpoint", "interop", "loading", "conversion", "training",
                   "data", "corpus", "inference", "evaluation", "demo", "cli"},
    "inference": {"conversion", "training", "data", "corpus", "evaluation", "demo", "cli",
                  "formats", "inputs"},
    "formats": {"conversion", "training", "corpus", "evaluation", "demo", "cli"},
    "inputs": {"models", "checkpoint", "interop", "loading", "conversion", "training", "corpus",
               "inference", "evaluation", "demo", "cli"},
    "evaluation": {"conversion", "training", "corpus", "demo", "cli"},
    "demo": {"cli"},
    # the HTTP service wraps an engine it is given: it adds no model, loading or decoding
    "service": {"models", "checkpoint", "interop", "loading", "conversion", "training", "data",
                "corpus", "evaluation", "demo", "cli", "decoding", "beam_search"},
    # the ONNX export sits beside conversion; its runtime backend, below the engine
    "onnx_export": {"conversion", "training", "data", "corpus", "inference", "evaluation",
                    "demo", "cli", "service"},
    "onnx_backend": {"conversion", "training", "data", "corpus", "inference", "evaluation",
                     "demo", "cli", "service"},
    # Which path --fast takes on this hardware: torch alone.
    "fast_path": {"models", "checkpoint", "interop", "loading", "conversion", "training",
                  "data", "corpus", "inference", "evaluation", "demo", "cli", "onnx_backend"},
    # Imported by the CLI before torch: it must import nothing of the package.
    "allocator": {"models", "checkpoint", "interop", "loading", "conversion", "training", "data",
                  "corpus", "inference", "evaluation", "demo", "cli", "config", "errors"},
}  # fmt: skip
# Decoding (greedy, beam search, LMs, tuned weights) sits on the foundation alone.
FORBIDDEN |= dict.fromkeys(
    ("decoding", "beam_search", "lm_scoring", "hotwords", "ngram", "tuned_weights", "tuning"),
    {"models", "checkpoint", "interop", "loading", "conversion", "training", "data", "corpus",
     "inference", "evaluation", "tuning", "demo", "cli"},
)  # fmt: skip


def part_of(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def imported_parts(path: Path) -> set[str]:
    parts = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            segments = name.split(".")
            if segments[0] == "wav2vec2" and len(segments) > 1:
                parts.add(segments[1])
    return parts


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if part_of(p) in FORBIDDEN)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_only_from_below(path):
    part = part_of(path)
    wrong = imported_parts(path) & FORBIDDEN[part]
    assert not wrong, f"{part} must not import {sorted(wrong)}"


def test_every_part_is_checked():
    """A new folder gets its row in FORBIDDEN (and in the README's table)."""
    folders = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert folders - {"cli"} <= set(FORBIDDEN)

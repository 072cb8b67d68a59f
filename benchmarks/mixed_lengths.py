"""Mixed lengths: 8 files of 2 to 20 s, BASE. Our engine's length-bucketed exact batches
against transformers' one zero-padded batch; both also compared with one-at-a-time output.

    .venv/bin/python benchmarks/mixed_lengths.py

The same script as ``inference_vs_hf.py --case mixed`` (see its docstring for the method and
the options).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import inference_vs_hf  # noqa: E402

if __name__ == "__main__":
    if "--worker" in sys.argv:  # workers are started through inference_vs_hf.py itself
        raise SystemExit("mixed_lengths.py has no worker mode")
    inference_vs_hf.main(case="mixed")

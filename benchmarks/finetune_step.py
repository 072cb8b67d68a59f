"""Fine-tuning step time and peak memory: ours against transformers' Wav2Vec2ForCTC.

The same script as ``pretrain_step.py --task finetune`` (see its docstring and
docs/benchmarks.md for the method): forward + CTC loss + backward + AdamW in train mode, the
feature encoder frozen on both sides, SpecAugment masks and LayerDrop off.

    .venv/bin/python benchmarks/finetune_step.py --preset base --batch 4x5 --warmup 1 --steps 3
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import pretrain_step  # noqa: E402

if __name__ == "__main__":
    pretrain_step.main(task="finetune")

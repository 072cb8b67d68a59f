"""Fine-tuning step time and peak memory: ours against transformers' Wav2Vec2ForCTC and,
with ``--fairseq-python``, fairseq's Wav2VecCtc.

The same script as ``pretrain_step.py --task finetune`` (see its docstring and
docs/benchmarks.md for the method): forward + CTC loss + backward + AdamW in train mode, the
feature encoder frozen on every side, SpecAugment masks and LayerDrop off.

    .venv/bin/python benchmarks/finetune_step.py --preset base --batch 4x5 --warmup 1 --steps 3 \
        --fairseq-python .peers-venv/bin/python

``--feature-cache`` (ours only, labelled so in the table and the JSON's
``settings.ours_feature_cache``): the frozen feature encoder's output comes from the
trainer's feature cache, as in epoch 2 onwards of a fine-tuning run (the warmup step fills it).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import pretrain_step  # noqa: E402

if __name__ == "__main__":
    pretrain_step.main(task="finetune")

"""``python -m wav2vec2`` (also what ``torchrun -m wav2vec2`` runs)."""

import sys

from wav2vec2.cli import main

sys.exit(main())

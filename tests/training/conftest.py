"""The training tests' fixtures; they and the helpers live in ``tests/training_support.py``,
a module with its own name (two ``conftest`` modules cannot both be imported by name)."""

from training_support import tiny_corpus, tiny_pretrained, tone_corpus  # noqa: F401

"""The data tests' fixtures; they and the helpers live in ``tests/data_support.py``,
a module with its own name (two ``conftest`` modules cannot both be imported by name)."""

from data_support import corpus  # noqa: F401

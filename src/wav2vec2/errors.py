"""User-facing errors.

Every problem a user can cause (a missing file, a corrupt checkpoint, an unsupported model)
raises :class:`Wav2Vec2Error` with a one-line message that names the file and the problem.
The CLI prints that line and exits with status 2, never a traceback.
"""

from __future__ import annotations

from pathlib import Path


class Wav2Vec2Error(Exception):
    """An error whose message is meant for the user, on one line."""

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        message = " ".join(str(message).split())  # keep it on one line
        super().__init__(f"{path}: {message}" if path is not None else message)
        self.path = None if path is None else str(path)

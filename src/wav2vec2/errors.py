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

    def __reduce__(self):
        # Raised in a worker process (corpus synthesis, data loading), the error is pickled
        # back to the parent. Exception's default rebuilds it as cls(*args), which fails for
        # a subclass whose __init__ takes other arguments, and a multiprocessing pool whose
        # result cannot be unpickled waits forever. Rebuild it as it is instead.
        return (_rebuild, (type(self), str(self), self.__dict__.copy()))


def _rebuild(cls: type[Wav2Vec2Error], text: str, state: dict) -> Wav2Vec2Error:
    error = cls.__new__(cls)
    Exception.__init__(error, text)
    error.__dict__.update(state)
    return error

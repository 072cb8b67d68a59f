"""Stop a run whose data can give it nothing, instead of skipping bad batches forever.

The collater drops unreadable files and hands back a ``SkippedBatch`` when a whole batch was
bad, and the trainer skips it; a few bad files among good ones cost nothing more. But when
the manifest's audio folder is gone, or every file is unreadable, every batch is skipped and
the loop would spin through empty epochs for ever. So:

- before training, the audio folder named on the manifest's first line must exist;
- a full pass over the data (a training epoch from its first batch, or the whole validation
  set) that yields no usable batch stops the run. The next pass would read the same files
  again, so waiting cannot help. The error counts the files and gives the first one's reason.
"""

from __future__ import annotations

from pathlib import Path

from wav2vec2.data.batching import SkippedBatch
from wav2vec2.errors import Wav2Vec2Error


def check_audio_root(root: str | Path, manifest: Path, what: str) -> None:
    """Raise unless ``root`` (the manifest's first line) is a folder. ``what``: "training"
    or "validation", for the message."""
    root = Path(root)
    if not root.is_dir():
        problem = "is not a folder" if root.exists() else "does not exist"
        raise Wav2Vec2Error(
            f"no {what} audio can be read: the audio folder on its first line {problem}: {root}",
            manifest,
        )


class PassTally:
    """Counts one pass over a loader: usable batches, and the files of skipped ones."""

    def __init__(self, what: str, manifest: Path | None) -> None:
        self.what, self.manifest = what, manifest
        self.usable = 0
        self.unreadable = 0
        self.first_error: str | None = None

    def count(self, batch) -> bool:
        """Record ``batch``; True when it can be used (a ``Batch``, not a ``SkippedBatch``)."""
        if isinstance(batch, SkippedBatch):
            self.unreadable += len(batch.errors)
            self.first_error = self.first_error or (batch.errors[0] if batch.errors else None)
            return False
        self.usable += 1
        return True

    def check(self) -> None:
        """Raise when the pass yielded no usable batch."""
        if self.usable == 0 and self.unreadable > 0:
            n = self.unreadable
            raise Wav2Vec2Error(
                f"no {self.what} audio could be read: {n} of {n} audio files in a full pass "
                f"were unreadable (the first: {self.first_error})",
                self.manifest,
            )

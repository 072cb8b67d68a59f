"""The service's settings: one frozen dataclass, filled from ``wav2vec2 serve``'s flags."""

from __future__ import annotations

from dataclasses import dataclass

from wav2vec2.errors import Wav2Vec2Error


@dataclass(frozen=True)
class ServiceConfig:
    # An upload's whole request body, in MiB (multipart overhead included). 25: OpenAI's.
    max_upload_mb: float = 25.0
    # Seconds of audio one request (or one live stream) may hold: an hour is about 230 MB
    # of float32 samples once decoded, whatever the size of the compressed upload.
    max_audio_seconds: float = 600.0
    # Requests waiting for the model beyond the batch being run; one more is answered 503.
    queue: int = 16
    # Requests run together in one engine call (the engine batches them by length).
    max_batch: int = 8
    # How long the batcher waits for more requests after the first, in seconds.
    batch_wait: float = 0.005
    # Seconds of new live audio between two partial transcripts (at most: a partial is
    # skipped while the previous one is still running).
    partial_every: float = 0.5
    # Live streams at once; one more is refused (each holds up to max_audio_seconds).
    max_streams: int = 4
    api_key: str | None = None  # None: no key needed
    retry_after: int = 1  # seconds, the Retry-After of a 503

    def __post_init__(self) -> None:
        for name in ("max_upload_mb", "max_audio_seconds", "batch_wait", "partial_every"):
            value = getattr(self, name)
            if not value > 0 and not (name == "batch_wait" and value == 0):
                raise Wav2Vec2Error(f"--{name.replace('_', '-')} must be positive, got {value}")
        for name in ("queue", "max_batch", "max_streams"):
            if getattr(self, name) < 1:
                raise Wav2Vec2Error(f"--{name.replace('_', '-')} must be 1 or more")
        if self.api_key is not None and not self.api_key.strip():
            raise Wav2Vec2Error("--api-key must not be empty")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

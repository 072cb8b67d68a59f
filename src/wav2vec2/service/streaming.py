"""Live transcription: audio arrives in pieces, partial transcripts go back as it does.

The engine's long-audio path does the work (:mod:`wav2vec2.chunking`): the audio so far is
planned into chunks with ``plan_chunks`` exactly as a file of that length would be. A chunk
whose right context has fully arrived is *committed*: a longer recording plans the same
chunk over the same samples, so its emissions are final, are computed once and kept. Only
the chunks still open (the tail: at most the last 24 s with the default chunking) are run
again for each partial; ``stitch`` joins them all and the engine's decoder decodes the
whole, so words carry times from the start of the stream. The final transcript is the
engine's transcript of the whole recording, the same as transcribing it as a file.

(For a model that normalizes each input's waveform, a chunk run alone is normalized over
its own samples rather than the recording's: partials may differ slightly from the final.)
"""

from __future__ import annotations

import numpy as np
from torch import Tensor

from wav2vec2.audio import AudioTooLong, check_finite
from wav2vec2.chunking import Chunk, plan_chunks, stitch
from wav2vec2.errors import Wav2Vec2Error
from wav2vec2.inference import Emission, Transcript, Wav2Vec2Inference

ENCODINGS = {"pcm_s16le": np.dtype("<i2"), "f32le": np.dtype("<f4")}


def samples(data: bytes, encoding: str) -> np.ndarray:
    """One binary message -> float32 samples (int16 scaled to [-1, 1))."""
    dtype = ENCODINGS[encoding]
    if len(data) % dtype.itemsize:
        raise Wav2Vec2Error(f"a {encoding} message must hold whole samples of "
                            f"{dtype.itemsize} bytes, got {len(data)} bytes")  # fmt: skip
    wave = np.frombuffer(data, dtype)
    if encoding == "pcm_s16le":
        return wave.astype(np.float32) / 32768.0
    wave = wave.astype(np.float32)
    check_finite(wave)
    return wave


class LiveTranscript:
    """The audio of one stream so far, and the emissions of its committed chunks.

    ``add`` runs on the event loop; ``partial`` and ``final`` run on the engine's thread,
    each on a snapshot of the audio (``snapshot``), so the two never share a buffer."""

    def __init__(self, engine: Wav2Vec2Inference, max_seconds: float):
        self.engine = engine
        self.rate = engine.cfg.sample_rate
        self.max_seconds = max_seconds
        self._pieces: list[np.ndarray] = []
        self.received = 0  # samples
        self._committed: dict[Chunk, Tensor] = {}  # touched on the engine's thread only

    @property
    def seconds(self) -> float:
        return self.received / self.rate

    def add(self, wave: np.ndarray) -> None:
        if self.received + len(wave) > self.max_seconds * self.rate:
            raise AudioTooLong(f"stream longer than the {self.max_seconds:g} s limit")
        self._pieces.append(wave)
        self.received += len(wave)

    def snapshot(self) -> np.ndarray:
        if len(self._pieces) > 1:
            self._pieces = [np.concatenate(self._pieces)]
        return self._pieces[0] if self._pieces else np.zeros(0, np.float32)

    def partial(self, wave: np.ndarray) -> Transcript | None:
        """The transcript of ``wave`` (the audio so far), from the committed chunks' kept
        emissions and the open ones run now; None while it is too short for the model."""
        if len(wave) < self.engine.cfg.feature_encoder.receptive_field:
            return None
        encoder = self.engine.cfg.feature_encoder
        chunks = plan_chunks(len(wave), self.engine.chunking, encoder, self.rate)
        emissions = []
        for chunk in chunks:
            logits = self._committed.get(chunk)
            if logits is None:
                (e,) = self.engine.emissions([wave[chunk.start : chunk.end]])
                if e.logits is None:
                    return None
                logits = e.logits
                if chunk.end < len(wave):  # its right context is whole: it will not change
                    self._committed[chunk] = logits
            emissions.append(logits)
        logits = stitch(chunks, emissions, encoder.stride)
        emission = Emission("<live>", len(wave) / self.rate, logits)
        (t,) = self.engine.decode_emissions([emission], self.engine.decoder)
        return t

    def final(self, wave: np.ndarray) -> Transcript:
        """The engine's transcript of the whole recording (as of a file)."""
        (t,) = self.engine.transcribe([wave])
        return t

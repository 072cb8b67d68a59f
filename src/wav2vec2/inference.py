"""One inference object behind every front (CLI, Python API, later the HTTP service).

:class:`Wav2Vec2Inference` owns a model in eval mode and turns audio (paths or arrays) into
features or transcripts: load -> 16 kHz mono -> normalize as the model's config says ->
batch -> model -> emissions -> decoder.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from wav2vec2.audio import check_finite, load_audio, normalize
from wav2vec2.beam_search import BeamSearchConfig, LexiconBeamDecoder
from wav2vec2.decoding import Decoder, GreedyDecoder, Hypothesis
from wav2vec2.errors import Wav2Vec2Error
from wav2vec2.loading import load_pretrained
from wav2vec2.models.wav2vec2 import Wav2Vec2Model
from wav2vec2.vocab import Vocabulary

Audio = str | Path | np.ndarray


@dataclass(frozen=True)
class Emission:
    source: str  # as in Transcript
    duration: float
    logits: Tensor | None  # (frames, vocabulary), float32 on the CPU; None when it failed
    error: str | None = None  # as in Transcript


@dataclass(frozen=True)
class Transcript:
    source: str  # file path, or "<array N>"
    text: str
    duration: float  # seconds of audio (0 when the input could not be read)
    hypothesis: Hypothesis | None  # None when it failed
    # The one-line reason this input could not be transcribed (unreadable, too short, ...):
    # a bad input is reported in its own record and never stops the others.
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class Wav2Vec2Inference:
    def __init__(
        self,
        model: Wav2Vec2Model,
        vocab: Vocabulary | None = None,
        device: str | torch.device = "cpu",
        decoder: Decoder | None = None,
        max_batch_seconds: float = 160.0,
        source: str = "<in memory>",
    ):
        """``vocab``: what the CTC head's outputs mean; needed to transcribe, not for
        features. ``source``: where the model came from, as reports name it."""
        self.model = model.to(device).eval()
        self.vocab = vocab
        self.device = torch.device(device)
        self.cfg = model.cfg
        self._decoder = decoder
        self.max_batch_samples = int(max_batch_seconds * self.cfg.sample_rate)
        self.source = source  # where the model came from, for reports

    @classmethod
    def from_pretrained(
        cls,
        source: str | Path,
        device: str = "cpu",
        lm: str | Path | None = None,
        beam: BeamSearchConfig | None = None,
        **kw,
    ) -> Wav2Vec2Inference:
        """Load a model; with ``lm`` (an LM directory), decode by lexicon beam search."""
        loaded = load_pretrained(source, device)
        engine = cls(loaded.model, loaded.vocab, device, source=str(source), **kw)
        if lm is not None:
            engine._decoder = engine.beam_decoder(lm, beam or BeamSearchConfig())
        return engine

    # -- audio ------------------------------------------------------------------------------
    def load(self, audio: Audio) -> np.ndarray:
        """Path or 16 kHz mono array -> the model's input (normalized if its config says)."""
        if isinstance(audio, str | Path):
            wave = load_audio(audio, self.cfg.sample_rate)
        else:
            try:
                wave = np.asarray(audio, dtype=np.float32)
            except (TypeError, ValueError) as exc:
                raise Wav2Vec2Error(f"expected a float array of samples ({exc})") from None
            if wave.ndim != 1:
                raise Wav2Vec2Error(f"expected mono audio, got an array of shape {wave.shape}")
            check_finite(wave)
        rf = self.cfg.feature_encoder.receptive_field
        if len(wave) < rf:
            raise Wav2Vec2Error(
                f"audio is too short: {len(wave)} samples, the model needs at least {rf}",
                audio if isinstance(audio, str | Path) else None,
            )
        return normalize(wave) if self.cfg.normalize_waveform else wave

    def _inputs(self, audios: Sequence[Audio]) -> tuple[dict[int, np.ndarray], dict[int, str]]:
        """({index: model input}, {index: error}): each input is loaded on its own, so that a
        bad one is reported by index and the others still run."""
        waves: dict[int, np.ndarray] = {}
        errors: dict[int, str] = {}
        for i, audio in enumerate(audios):
            try:
                waves[i] = self.load(audio)
            except Wav2Vec2Error as exc:
                errors[i] = str(exc)
        return waves, errors

    def _batches(self, waves: Mapping[int, np.ndarray]) -> Iterable[list[int]]:
        """Indices grouped into batches of similar length. Group-norm encoders normalize over
        time, so padding would change their output: they run one utterance at a time."""
        order = sorted(waves, key=lambda i: len(waves[i]))
        if self.cfg.feature_encoder.norm == "group":
            yield from ([i] for i in order)
            return
        batch: list[int] = []
        for i in order:
            if batch and len(waves[i]) * (len(batch) + 1) > self.max_batch_samples:
                yield batch
                batch = []
            batch.append(i)
        if batch:
            yield batch

    def _collate(self, waves: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        lengths = torch.tensor([len(w) for w in waves])
        x = torch.zeros(len(waves), int(lengths.max()))
        for row, w in zip(x, waves):
            row[: len(w)] = torch.from_numpy(w)
        return x.to(self.device), lengths.to(self.device)

    # -- features ---------------------------------------------------------------------------
    @torch.inference_mode()
    def features(self, audio: Audio, layer: int | None = None) -> np.ndarray:
        """(frames, dim) float32: the Transformer output, or hidden state ``layer``
        (0 = input to the first block, N = output of block N)."""
        layers = self.cfg.transformer.layers
        if layer is not None and not 0 <= layer <= layers:
            raise Wav2Vec2Error(f"--layer must be between 0 and {layers}, got {layer}")
        x, lengths = self._collate([self.load(audio)])
        out = self.model.encode(x, lengths, num_layers=layer)
        h = out.last_hidden_state if layer is None else out.hidden_states[layer]
        return h[0, : int(out.frame_lengths[0])].float().cpu().numpy()

    # -- recognition ------------------------------------------------------------------------
    @property
    def decoder(self) -> Decoder:
        if self._decoder is None:
            self._decoder = GreedyDecoder(self._vocab())
        return self._decoder

    def beam_decoder(self, lm: str | Path, config: BeamSearchConfig) -> LexiconBeamDecoder:
        """Lexicon beam search with the LM directory ``lm`` (``wav2vec2 lm build``)."""
        return LexiconBeamDecoder(self._vocab(), lm, config)

    def _vocab(self) -> Vocabulary:
        if self.model.ctc_head is None:
            raise Wav2Vec2Error("this model has no CTC head: it cannot transcribe")
        if self.vocab is None:
            raise Wav2Vec2Error("this model has no vocabulary: it cannot transcribe")
        return self.vocab

    def _forward(self, waves: Mapping[int, np.ndarray], progress: bool):
        """(batch indices, logits (B, T, V), valid frames (B,)) per length-bucketed batch."""
        bar = tqdm(total=len(waves), unit="utt", disable=not progress, dynamic_ncols=True)
        try:
            for batch in list(self._batches(waves)):
                bar.update(len(batch))
                x, lengths = self._collate([waves[i] for i in batch])
                out = self.model.ctc(x, lengths)
                yield batch, out.logits, out.frame_lengths
        finally:
            bar.close()

    @torch.inference_mode()
    def transcribe(
        self, audios: Sequence[Audio], progress: bool = False, decoder: Decoder | None = None
    ) -> list[Transcript]:
        """One transcript per input, in input order; inputs are batched by length (see
        ``_batches``). An input that cannot be read gets a transcript whose ``error`` says why.
        ``decoder`` replaces the engine's own for this call (the model is not reloaded)."""
        decoder = decoder or self.decoder
        waves, errors = self._inputs(audios)
        results = {
            i: Transcript(self._source(audios, i), "", 0.0, None, e) for i, e in errors.items()
        }
        for batch, logits, frames in self._forward(waves, progress):
            for i, hyp in zip(batch, decoder.decode(logits, frames)):
                duration = len(waves[i]) / self.cfg.sample_rate
                results[i] = Transcript(self._source(audios, i), hyp.text, duration, hyp)
        return [results[i] for i in range(len(audios))]

    @torch.inference_mode()
    def emissions(self, audios: Sequence[Audio], progress: bool = False) -> list[Emission]:
        """The CTC head's logits per input, to decode several ways without re-running the
        model (e.g. to tune the LM weight): ``decode_emissions``."""
        self._vocab()  # fail early if the model cannot transcribe
        waves, errors = self._inputs(audios)
        results = {i: Emission(self._source(audios, i), 0.0, None, e) for i, e in errors.items()}
        for batch, logits, frames in self._forward(waves, progress):
            for row, i, n in zip(logits, batch, frames.tolist()):
                duration = len(waves[i]) / self.cfg.sample_rate
                logits_i = row[: int(n)].float().cpu().clone()
                results[i] = Emission(self._source(audios, i), duration, logits_i)
        return [results[i] for i in range(len(audios))]

    def decode_emissions(self, emissions: Sequence[Emission], decoder: Decoder) -> list[Transcript]:
        out = []
        for e in emissions:
            if e.logits is None:
                out.append(Transcript(e.source, "", e.duration, None, e.error))
                continue
            (hyp,) = decoder.decode(e.logits[None], torch.tensor([e.logits.shape[0]]))
            out.append(Transcript(e.source, hyp.text, e.duration, hyp))
        return out

    @staticmethod
    def _source(audios: Sequence[Audio], i: int) -> str:
        return str(audios[i]) if isinstance(audios[i], str | Path) else f"<array {i}>"

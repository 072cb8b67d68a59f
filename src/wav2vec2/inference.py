"""One inference object behind every front (CLI, Python API, later the HTTP service).

:class:`Wav2Vec2Inference` owns a model in eval mode and turns audio (paths or arrays) into
features or transcripts: load -> 16 kHz mono -> normalize as the model's config says ->
batch -> model -> emissions -> decoder (or, for a known transcript, forced alignment).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from wav2vec2.alignment import Alignment, align, label_ids
from wav2vec2.audio import audio_info, check_finite, load_audio, normalize
from wav2vec2.audio_stream import AudioStream, resampled_length
from wav2vec2.beam_search import BeamSearchConfig, LexiconBeamDecoder
from wav2vec2.chunking import Chunk, ChunkConfig, plan_chunks, stitch
from wav2vec2.decoding import Decoder, GreedyDecoder, Hypothesis
from wav2vec2.errors import Wav2Vec2Error
from wav2vec2.loading import load_pretrained
from wav2vec2.models.wav2vec2 import Wav2Vec2Model
from wav2vec2.onnx_backend import OnnxCTCModel, is_onnx, onnx_model
from wav2vec2.timestamps import Segment, char_segments, word_segments
from wav2vec2.tuned_weights import with_tuned_weights
from wav2vec2.vocab import Vocabulary
from wav2vec2.worker_pool import check_workers, ordered_map

# The model's compute precision (``precision=``, ``--precision``): autocast's dtype.
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}

Audio = str | Path | np.ndarray


def check_precision(precision: str, onnx: bool) -> None:
    """A known precision, and fp32 for the ONNX backends (their int8 is ``--fast``)."""
    if precision not in PRECISIONS:
        raise Wav2Vec2Error(f"precision must be one of {', '.join(PRECISIONS)}, not {precision}")
    if onnx and precision != "fp32":
        raise Wav2Vec2Error(f"the ONNX backend runs in fp32 or int8, not {precision}")


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
    words: tuple[Segment, ...] = ()  # each word with start, end (seconds) and confidence
    chars: tuple[Segment, ...] = ()  # each letter likewise, word delimiters included

    @property
    def ok(self) -> bool:
        return self.error is None


class Wav2Vec2Inference:
    def __init__(
        self,
        model: Wav2Vec2Model | OnnxCTCModel,
        vocab: Vocabulary | None = None,
        device: str | torch.device = "cpu",
        decoder: Decoder | None = None,
        # 30 s: one chunk (20 s + 2 x 2 s of context) per batch. A BASE encoder's first
        # conv layer holds 512 channels x 3200 frames per second of audio in float32, a few
        # times over: 60 s batches took an hour of audio to 2256 MiB peak RSS (an hour with
        # 30 s batches: docs/benchmarks.md). Larger batches buy little speed on a CPU.
        max_batch_seconds: float = 30.0,
        source: str = "<in memory>",
        chunking: ChunkConfig | None = None,
        exact_batching: bool = True,
        precision: str = "fp32",
        decode_workers: int = 1,
    ):
        """``vocab``: what the CTC head's outputs mean; needed to transcribe, not for
        features. ``source``: where the model came from, as reports name it.

        ``exact_batching``: a group-norm encoder (BASE, LARGE) takes its statistics over
        each input's own samples (``FeatureEncoderConfig.masked_group_norm``), so that a
        padded batch gives every input the output it gets alone, and such models are batched
        like the others. Like ``eval()``, this is set on the model passed in. False keeps the
        model's setting as it is (off for a loaded model: fairseq's numerics, one utterance
        at a time).

        ``model`` may also be an ONNX export run by ONNX Runtime (:mod:`wav2vec2.onnx_backend`,
        CPU only): the engine asks a model for ``cfg`` and ``ctc(waveforms, lengths)`` only,
        and an export's group norm is always exact.

        ``precision``: "fp32", or "bf16"/"fp16" to run the model under autocast: fast on a
        GPU and, bf16, on a CPU with AMX (``--fast`` there, :mod:`wav2vec2.fast_path`); on a
        CPU without AMX both are slower than fp32. The logits come back float32.

        ``decode_workers``: decode that many inputs at once in forked processes
        (:mod:`wav2vec2.worker_pool`) while the model runs on the next ones. It pays for
        beam search with an LM, whose word scores are Python and hold the GIL; the
        transcripts are the same as with 1.
        """
        check_precision(precision, onnx=isinstance(model, OnnxCTCModel))
        if isinstance(model, OnnxCTCModel):
            if torch.device(device).type != "cpu":
                raise Wav2Vec2Error(f"the ONNX backend runs on the CPU, not on {device}")
        else:
            if exact_batching and model.cfg.feature_encoder.norm == "group":
                model.set_masked_group_norm(True)
            model = model.to(device).eval()
        self.model = model
        self.vocab = vocab
        self.device = torch.device(device)
        self.cfg = model.cfg
        self._decoder = decoder
        self.max_batch_samples = int(max_batch_seconds * self.cfg.sample_rate)
        # inputs are read this much audio at a time: bounded memory for any number of files
        self.window_samples = 4 * self.max_batch_samples
        self.chunking = chunking or ChunkConfig()
        self.source = source  # where the model came from, for reports
        self.precision = precision
        self.decode_workers = check_workers(decode_workers)

    @classmethod
    def from_pretrained(
        cls,
        source: str | Path,
        device: str = "cpu",
        lm: str | Path | None = None,
        beam: BeamSearchConfig | None = None,
        backend: str | None = None,
        **kw,
    ) -> Wav2Vec2Inference:
        """Load a model; with ``lm`` (an LM directory), decode by beam search with ``beam``'s
        settings, or without it, with the weights ``wav2vec2 lm tune`` chose for the LM (the
        defaults if it has none; see :mod:`wav2vec2.tuned_weights`). ``backend``: "torch",
        "onnx" or "onnx-int8" (:mod:`wav2vec2.onnx_backend`); None runs an ``.onnx`` file with
        ONNX Runtime and anything else with PyTorch."""
        if backend in ("onnx", "onnx-int8") or (backend is None and is_onnx(source)):
            check_precision(kw.get("precision", "fp32"), onnx=True)  # before an export
            model, vocab = onnx_model(source, backend)
        elif is_onnx(source):
            raise Wav2Vec2Error("is an ONNX export: it runs with ONNX Runtime, not torch", source)
        else:
            loaded = load_pretrained(source, device)
            model, vocab = loaded.model, loaded.vocab
        engine = cls(model, vocab, device, source=str(source), **kw)
        if lm is not None:
            if beam is None:
                beam, _ = with_tuned_weights(lm, BeamSearchConfig(), model=source)
            engine._decoder = engine.beam_decoder(lm, beam)
        return engine

    def _autocast(self) -> contextlib.AbstractContextManager:
        """Autocast to the engine's precision (nothing for fp32)."""
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=PRECISIONS[self.precision])

    @property
    def backend(self) -> str:
        """What runs the model: "torch", "onnx" or "onnx-int8" (reports record it)."""
        return self.model.backend if isinstance(self.model, OnnxCTCModel) else "torch"

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

    def _open(self, audio: Audio) -> np.ndarray | AudioStream:
        """The model's input, loaded (:meth:`load`), or for a file long enough to run in
        chunks, a stream that reads each chunk from the file when its batch runs (the
        header says how long it is), so that no file is ever held whole."""
        if isinstance(audio, str | Path):
            frames, rate = audio_info(audio)
            samples = resampled_length(frames, rate, self.cfg.sample_rate)
            fe, sr = self.cfg.feature_encoder, self.cfg.sample_rate
            if len(plan_chunks(samples, self.chunking, fe, sr)) > 1:
                return AudioStream(audio, sr, samples, self.cfg.normalize_waveform)
        return self.load(audio)

    def _windows(
        self, audios: Sequence[Audio]
    ) -> Iterator[dict[int, np.ndarray | AudioStream | str]]:
        """Inputs loaded a window at a time ({index: model input, or the one-line error}),
        so that memory holds one window of audio however many files there are. A window
        closes after ``window_samples`` of audio (or at the end); a file that runs in
        chunks is a window of its own, streamed (its chunks are read and batched in file
        order, see ``_emissions``)."""
        window: dict[int, np.ndarray | AudioStream | str] = {}
        held = 0
        for i, audio in enumerate(audios):
            try:
                wave = self._open(audio)
            except Wav2Vec2Error as exc:
                window[i] = str(exc)
                continue
            if isinstance(wave, AudioStream):
                if window:
                    yield window
                    window, held = {}, 0
                yield {i: wave}
                continue
            window[i] = wave
            held += len(wave)
            if held >= self.window_samples:
                yield window
                window, held = {}, 0
        if window:
            yield window

    def _batches(self, lengths: Sequence[int], in_order: bool = False) -> Iterable[list[int]]:
        """Indices of ``lengths`` grouped into batches of similar length, at most
        ``max_batch_seconds`` of padded audio each (``in_order``: consecutive indices, for
        a stream's chunks, which are read forward and nearly all of one length). A
        group-norm encoder without ``masked_group_norm`` normalizes over the padding too,
        which would change its output: it runs one at a time."""
        order = range(len(lengths))
        if not in_order:
            order = sorted(order, key=lambda i: lengths[i])
        fe = self.cfg.feature_encoder
        if fe.norm == "group" and not fe.masked_group_norm:
            yield from ([i] for i in order)
            return
        batch: list[int] = []
        for i in order:
            if batch and lengths[i] * (len(batch) + 1) > self.max_batch_samples:
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
        with self._autocast():
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
        """Beam search with the LM directory ``lm`` (``wav2vec2 lm build``), lexicon or
        lexicon-free as ``config`` says."""
        return LexiconBeamDecoder(self._vocab(), lm, config)

    def _vocab(self) -> Vocabulary:
        if self.cfg.vocab_size is None:
            raise Wav2Vec2Error("this model has no CTC head: it cannot transcribe")
        if self.vocab is None:
            raise Wav2Vec2Error("this model has no vocabulary: it cannot transcribe")
        return self.vocab

    def _emissions(self, audios: Sequence[Audio], bar: tqdm) -> Iterator[Emission]:
        """One Emission per input, in input order. Each window's inputs are cut into chunks
        (long files; see :mod:`wav2vec2.chunking`), the chunks of all its inputs are batched
        by length, and each input's emissions are stitched from its chunks. A file that runs
        in chunks is a window of its own: its chunks are read from the file in order as
        their batches run (:class:`AudioStream`), and a file that goes bad mid-way gets its
        one-line error like any unreadable input."""
        rate, stride = self.cfg.sample_rate, self.cfg.feature_encoder.stride
        for window in self._windows(audios):
            pieces: list[tuple[int, Chunk]] = []
            done: list[int] = []  # samples of its input each piece accounts for on the bar
            for i, wave in window.items():
                if not isinstance(wave, str):
                    chunks = plan_chunks(len(wave), self.chunking, self.cfg.feature_encoder, rate)
                    pieces += [(i, chunk) for chunk in chunks]
                    done += _own_samples(chunks, len(wave), stride)
            outputs: dict[int, Tensor] = {}
            lengths = [chunk.end - chunk.start for _, chunk in pieces]
            streamed = any(isinstance(wave, AudioStream) for wave in window.values())
            for batch in self._batches(lengths, in_order=streamed):
                try:
                    waves = [_samples(window[pieces[k][0]], pieces[k][1]) for k in batch]
                except Wav2Vec2Error as exc:  # a stream gone bad mid-way: alone in its window
                    window = {i: str(exc) for i in window}
                    break
                x, n = self._collate(waves)
                with self._autocast():
                    out = self.model.ctc(x, n)
                for row, k, frames in zip(out.logits, batch, out.frame_lengths.tolist()):
                    # a copy: a view would keep the whole padded batch alive with it
                    outputs[k] = row[: int(frames)].float().cpu().clone()
                seconds = sum(done[k] for k in batch) / rate
                if bar.total is not None:  # float sums may pass the total by a rounding error
                    seconds = min(seconds, bar.total - bar.n)
                bar.update(seconds)
            mine: dict[int, list[int]] = {}  # input -> its pieces, in order
            for k, (i, _) in enumerate(pieces):
                mine.setdefault(i, []).append(k)
            for i, wave in window.items():
                source = self._source(audios, i)
                if isinstance(wave, str):
                    yield Emission(source, 0.0, None, wave)
                    continue
                if isinstance(wave, AudioStream):
                    wave.close()
                ks = mine[i]
                # popped: the chunks' logits go once stitched (one copy of the emissions, not two)
                logits = stitch([pieces[k][1] for k in ks], [outputs.pop(k) for k in ks], stride)
                yield Emission(source, len(wave) / rate, logits)

    def _bar(self, audios: Sequence[Audio], progress: bool) -> tqdm:
        """A bar over seconds of audio (rate: audio seconds per second, and an ETA); the total
        comes from the headers, so nothing is decoded twice."""
        total = None
        if progress:
            total = sum(_duration(a, self.cfg.sample_rate) for a in audios)
        return tqdm(
            total=total, unit="s", unit_scale=True, disable=not progress, dynamic_ncols=True,
            desc="audio", bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s audio "
            "[{elapsed}<{remaining}, {rate_fmt}]",
        )  # fmt: skip

    @torch.inference_mode()
    def transcribe_iter(
        self, audios: Sequence[Audio], progress: bool = False, decoder: Decoder | None = None
    ) -> Iterator[Transcript]:
        """Transcripts one by one, in input order, as they are ready (the CLI prints each at
        once). An input that cannot be read gets a transcript whose ``error`` says why;
        ``decoder`` replaces the engine's own for this call (the model is not reloaded)."""
        decode = functools.partial(self._decode_one, decoder=decoder or self.decoder)
        with self._bar(audios, progress) as bar:
            yield from ordered_map(decode, self._emissions(audios, bar), self.decode_workers)

    def transcribe(
        self, audios: Sequence[Audio], progress: bool = False, decoder: Decoder | None = None
    ) -> list[Transcript]:
        """One transcript per input, in input order (see :meth:`transcribe_iter`). Inputs are
        batched by length; long ones are cut into chunks (``chunking``) and stitched."""
        return list(self.transcribe_iter(audios, progress, decoder))

    @torch.inference_mode()
    def emissions(self, audios: Sequence[Audio], progress: bool = False) -> list[Emission]:
        """The CTC head's logits per input, to decode several ways without re-running the
        model (e.g. to tune the LM weight): ``decode_emissions``."""
        self._vocab()  # fail early if the model cannot transcribe
        with self._bar(audios, progress) as bar:
            return list(self._emissions(audios, bar))

    def decode_emissions(self, emissions: Sequence[Emission], decoder: Decoder) -> list[Transcript]:
        decode = functools.partial(self._decode_one, decoder=decoder)
        workers = min(self.decode_workers, len(emissions)) or 1
        return list(ordered_map(decode, emissions, workers))

    def _decode_one(self, emission: Emission, decoder: Decoder) -> Transcript:
        """Decode one input's emissions; its words and letters get times and confidences
        from the frames of the best path (:mod:`wav2vec2.timestamps`)."""
        e = emission
        if e.logits is None:
            return Transcript(e.source, "", e.duration, None, e.error)
        (hyp,) = decoder.decode(e.logits[None], torch.tensor([e.logits.shape[0]]))
        vocab = self._vocab()
        seconds = 1 / self.cfg.frame_rate
        chars = char_segments(hyp, vocab, e.logits.log_softmax(-1), seconds)
        words = word_segments(chars, vocab.word_delimiter)
        return Transcript(e.source, hyp.text, e.duration, hyp, None, tuple(words), tuple(chars))

    # -- forced alignment -------------------------------------------------------------------
    def align(self, audio: Audio, text: str, progress: bool = False) -> Alignment:
        """Word and letter times of a known transcript ``text`` in ``audio``, by CTC forced
        alignment (:mod:`wav2vec2.alignment`) of the emissions (long audio in chunks, as
        for transcripts). ``text`` is spelled as the model's labels are (upper case, words
        joined by the word delimiter). Raises Wav2Vec2Error, naming the input, for audio
        that cannot be read, a character outside the vocabulary, or audio too short for
        the text."""
        vocab = self._vocab()
        text = vocab.normalize(text)
        source = self._source([audio], 0)
        targets = _naming(source, label_ids, text, vocab)  # a typo fails before the model runs
        (e,) = self.emissions([audio], progress)
        if e.logits is None:
            raise Wav2Vec2Error(e.error)  # it names the input already
        seconds = 1 / self.cfg.frame_rate
        log_probs = e.logits.log_softmax(-1)
        log_prob, words, chars = _naming(source, align, log_probs, targets, vocab, seconds)
        return Alignment(source, text, e.duration, log_prob, words, chars)

    @staticmethod
    def _source(audios: Sequence[Audio], i: int) -> str:
        return str(audios[i]) if isinstance(audios[i], str | Path) else f"<array {i}>"


def _samples(wave: np.ndarray | AudioStream, chunk: Chunk) -> np.ndarray:
    """The samples a chunk runs on: a slice of a loaded input, or read from a stream."""
    if isinstance(wave, AudioStream):
        return wave.read(chunk.start, chunk.end)
    return wave[chunk.start : chunk.end]


def _own_samples(chunks: Sequence[Chunk], num_samples: int, stride: int) -> list[int]:
    """The samples each chunk accounts for, adding up to the input's length: the frames it
    keeps, the last one the rest (its context, which the next or last chunk runs again, is
    not counted twice; the progress bar's total is the inputs' length)."""
    own = [(c.keep_to - c.keep_from) * stride for c in chunks[:-1]]
    return [*own, num_samples - sum(own)]


def _duration(audio: Audio, sample_rate: int) -> float:
    """Seconds of audio, from the header for a file (0 if it cannot be read: the reader
    reports that file later)."""
    if not isinstance(audio, str | Path):
        return len(audio) / sample_rate
    try:
        frames, rate = audio_info(audio)
    except Wav2Vec2Error:
        return 0.0
    return frames / rate


def _naming(source: str, f, *args):
    """``f(*args)``, with a Wav2Vec2Error it raises naming ``source``."""
    try:
        return f(*args)
    except Wav2Vec2Error as exc:
        raise Wav2Vec2Error(str(exc), source) from None

"""The flags that ``transcribe`` and ``evaluate`` share: decoding (greedy, or beam search
with an LM), the backend that runs the model, and long-audio chunking (which ``align``
takes too); ``lm tune`` shares the search flags."""

from __future__ import annotations

import sys
from pathlib import Path

from wav2vec2.beam_search import BeamSearchConfig
from wav2vec2.chunking import ChunkConfig
from wav2vec2.errors import Wav2Vec2Error
from wav2vec2.fast_path import fast_path
from wav2vec2.hotwords import DEFAULT_WEIGHT, parse_hotwords
from wav2vec2.inference import PRECISIONS
from wav2vec2.onnx_backend import BACKENDS, is_onnx
from wav2vec2.tuned_weights import WEIGHTS, with_tuned_weights

SEARCH_FLAGS = {"beam": "--beam", "beam_threshold": "--beam-threshold",
                "lexicon_free": "--lexicon-free"}  # fmt: skip
BEAM_FLAGS = {"lm_weight": "--lm-weight", "word_score": "--word-score", **SEARCH_FLAGS,
              "hotword": "--hotword"}  # fmt: skip


def add_search_args(g) -> None:
    """--beam, --beam-threshold, --lexicon-free (defaults None: a flag given without --lm is
    an error, not silently ignored) and --decode-workers."""
    d = BeamSearchConfig()
    g.add_argument("--beam", type=int, help=f"hypotheses kept per frame ({d.beam})")
    g.add_argument("--beam-threshold", type=float, help=f"({d.beam_threshold})")
    g.add_argument(
        "--lexicon-free",
        action="store_true",
        default=None,
        help="also words outside the lexicon (the LM scores them as unseen words)",
    )
    g.add_argument(
        "--decode-workers", type=int, default=1, metavar="N",
        help="decode N inputs at once in worker processes while the model runs on the next "
        "(beam search is one core per input; the same transcripts; default: %(default)s)",
    )  # fmt: skip


def add_decoding_args(p) -> None:
    d = BeamSearchConfig()
    g = p.add_argument_group("beam search (with --lm; greedy without)")
    g.add_argument("--lm", help="LM directory from `wav2vec2 lm build`: beam search with it")
    g.add_argument("--lm-weight", type=float, help=f"LM weight (alpha; tuned, else {d.lm_weight})")
    g.add_argument("--word-score", type=float, help=f"per-word bonus (tuned, else {d.word_score})")
    add_search_args(g)
    g.add_argument(
        "--hotword",
        action="append",
        metavar="WORD[:WEIGHT]",
        help=f"prefer WORD: WEIGHT (default {DEFAULT_WEIGHT:g}) added per occurrence; repeatable",
    )
    add_backend_args(p)
    add_chunking_args(p)


def add_backend_args(p) -> None:
    g = p.add_argument_group("backend")
    g.add_argument(
        "--backend", choices=BACKENDS, default=None,
        help="torch (default), onnx (ONNX Runtime, the same logits within 1e-4) or onnx-int8 "
        "(int8 MatMuls: faster, approximate; see docs/benchmarks.md). An .onnx MODEL runs "
        "as exported; another MODEL is exported first (export once with `wav2vec2 export "
        "onnx` to reuse it)",
    )  # fmt: skip
    g.add_argument(
        "--fast", action="store_true",
        help="this machine's fast path, approximate: --precision bf16 where the hardware has "
        "bf16 matrix units (a CPU with AMX, a CUDA GPU), --backend onnx-int8 elsewhere",
    )  # fmt: skip


def model_args(args) -> dict:
    """``backend`` (None: an .onnx MODEL with ONNX Runtime, anything else torch) and
    ``precision`` for ``Wav2Vec2Inference.from_pretrained``, ``--fast`` resolved."""
    if not args.fast:
        return {"backend": args.backend, "precision": precision(args)}
    # an export runs with ONNX Runtime only: its fast path is int8 wherever it runs
    backend, chosen = ("onnx-int8", "fp32") if is_onnx(args.model) else fast_path(args.device)
    for flag, given, fast in (("--backend", args.backend, backend),
                              ("--precision", args.precision, chosen)):  # fmt: skip
        if given is not None and given != fast:
            raise Wav2Vec2Error(f"--fast runs {flag} {fast} here; it cannot go with {flag} {given}")
    return {"backend": backend, "precision": chosen}


def precision(args) -> str:
    """``--precision``, fp32 when not given."""
    return args.precision or "fp32"


def add_device_args(p) -> None:
    """``--device`` and ``--precision``: where the model runs and in what precision."""
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:1, ...")
    p.add_argument(
        "--precision", choices=tuple(PRECISIONS), default=None,
        help="bf16 or fp16 run the model under autocast (fast on GPUs and on CPUs with AMX; "
        "slower than fp32 on other CPUs); logits stay float32 (default: fp32)",
    )  # fmt: skip


def add_output_args(p, unit: str, char_help: str) -> None:
    """``--timestamps``, ``--output-dir``, ``--device`` and ``--precision``, as
    ``transcribe`` and ``align`` take them (``unit``: what gets one output file)."""
    p.add_argument("--timestamps", choices=("word", "char"), default="word", help=char_help)
    p.add_argument(
        "--output-dir",
        type=Path,
        help=f"one file per {unit} here (resumable: existing outputs are skipped)",
    )
    add_device_args(p)


def add_chunking_args(p) -> None:
    c, k = ChunkConfig(), p.add_argument_group("long audio")
    k.add_argument(
        "--chunk-seconds",
        type=float,
        default=c.chunk_seconds,
        help="longer audio is run in chunks of this many seconds (default: %(default)s)",
    )
    k.add_argument("--context-seconds", type=float, default=c.context_seconds,
                   help="extra audio on each side of a chunk (default: %(default)s)")  # fmt: skip


def search_config(args, flags: dict[str, str] = SEARCH_FLAGS) -> BeamSearchConfig:
    """The search settings given (FLAGS), over the defaults."""
    given = {name: getattr(args, name) for name in flags if getattr(args, name) is not None}
    hotwords = parse_hotwords(given.pop("hotword", ()))
    return BeamSearchConfig(**given, hotwords=hotwords)


def beam_config(args) -> BeamSearchConfig | None:
    """The beam search settings given, over those tuned for the LM (``wav2vec2 lm tune``;
    stderr says when they are used) and the defaults; None without ``--lm`` (greedy)."""
    given = [name for name in BEAM_FLAGS if getattr(args, name) is not None]
    if args.lm is None:
        if given:
            flags = ", ".join(BEAM_FLAGS[name] for name in given)
            raise Wav2Vec2Error(f"{flags} need --lm DIR: without an LM, decoding is greedy")
        return None
    config = search_config(args, BEAM_FLAGS)
    weights = tuple(w for w in WEIGHTS if w in given)
    config, note = with_tuned_weights(args.lm, config, weights, model=args.model)
    if note is not None:
        print(f"wav2vec2: {note}", file=sys.stderr)
    return config


def chunk_config(args) -> ChunkConfig:
    return ChunkConfig(args.chunk_seconds, args.context_seconds)

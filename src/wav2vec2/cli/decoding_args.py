"""The decoding flags that ``transcribe`` and ``evaluate`` share."""

from __future__ import annotations

from wav2vec2.beam_search import BeamSearchConfig


def add_decoding_args(p) -> None:
    d = BeamSearchConfig()
    g = p.add_argument_group("beam search (with --lm; greedy without)")
    g.add_argument("--lm", help="LM directory from `wav2vec2 lm build`: lexicon beam search")
    g.add_argument("--lm-weight", type=float, default=d.lm_weight, help="LM weight (alpha)")
    g.add_argument("--word-score", type=float, default=d.word_score, help="per-word bonus")
    g.add_argument("--beam", type=int, default=d.beam, help="hypotheses kept per frame")
    g.add_argument("--beam-threshold", type=float, default=d.beam_threshold)


def beam_config(args) -> BeamSearchConfig:
    return BeamSearchConfig(
        beam=args.beam,
        beam_threshold=args.beam_threshold,
        lm_weight=args.lm_weight,
        word_score=args.word_score,
    )

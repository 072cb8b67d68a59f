"""``wav2vec2 lm build TEXT --out DIR [--order 4]``: a word n-gram LM for beam search.
``wav2vec2 lm tune MODEL --data DIR --split dev --lm DIR``: its weights for a model."""

from __future__ import annotations

from wav2vec2.cli.decoding_args import add_device_args, add_search_args, precision, search_config
from wav2vec2.evaluation import tune_beam
from wav2vec2.inference import Wav2Vec2Inference
from wav2vec2.ngram import build_ngram
from wav2vec2.tuned_weights import tuned_path
from wav2vec2.tuning import LM_WEIGHTS, WORD_SCORES, make_grid


def register(sub) -> None:
    p = sub.add_parser("lm", help="word n-gram language models (KenLM) for beam search")
    verbs = p.add_subparsers(dest="lm_verb", metavar="VERB", required=True)
    b = verbs.add_parser("build", help="estimate an n-gram LM and its lexicon from text")
    b.add_argument("text", help="UTF-8 text, one sentence per line, spelled as the transcripts")
    b.add_argument("--out", required=True, help="LM directory to write (lm.bin, lexicon.txt)")
    b.add_argument("--order", type=int, default=4, help="n-gram order (default 4, the paper's)")
    b.add_argument("--memory", default="20%", help="lmplz's sorting memory (default 20%%)")
    b.set_defaults(func=_build)

    t = verbs.add_parser(
        "tune", help="choose the LM weight and word score on a dev split (LM/tuned.json)"
    )
    t.add_argument("model")
    t.add_argument("--data", required=True, help="directory with SPLIT.tsv and SPLIT.wrd/.ltr")
    t.add_argument("--split", default="dev", help="(default: dev)")
    t.add_argument("--lm", required=True, help="LM directory; the weights go to its tuned.json")
    t.add_argument("--grid", metavar="W:S,...", help="the (lm_weight:word_score) points to try")
    t.add_argument("--lm-weights", metavar="W,...", help=f"LM weights to try ({_list(LM_WEIGHTS)})")
    t.add_argument("--word-scores", metavar="S,...", help=f"word scores ({_list(WORD_SCORES)})")
    add_search_args(t.add_argument_group("search (as evaluate and transcribe will run it)"))
    add_device_args(t)
    t.set_defaults(func=_tune)


def _list(values) -> str:
    return ",".join(f"{v:g}" for v in values)


def _build(args) -> int:
    info = build_ngram(args.text, args.out, order=args.order, memory=args.memory)
    print(
        f"{args.out}: {info.order}-gram LM on {info.sentences} sentences, {info.words} words, "
        f"lexicon of {info.vocabulary} words"
    )
    return 0


def _tune(args) -> int:
    grid = make_grid(args.grid, args.lm_weights, args.word_scores)
    base = search_config(args)
    engine = Wav2Vec2Inference.from_pretrained(
        args.model, args.device, precision=precision(args), decode_workers=args.decode_workers
    )
    best, scores = tune_beam(engine, args.data, args.split, args.lm, grid, base, record=True)
    print(f"{args.split} WER ({base.search} search, beam {base.beam}):")
    print("  lm_weight  word_score     WER")
    for config, wer in scores:
        print(f"  {config.lm_weight:9g}  {config.word_score:10g}  {100 * wer:6.2f}%")
    wer = min(w for _, w in scores)
    print(f"best: lm_weight={best.lm_weight:g} word_score={best.word_score:g} "
          f"({args.split} WER {100 * wer:.2f}%) -> {tuned_path(args.lm)}")  # fmt: skip
    return 0

"""``wav2vec2 lm build TEXT --out DIR [--order 4]``: a word n-gram LM for beam search."""

from __future__ import annotations

from wav2vec2.ngram import build_ngram


def register(sub) -> None:
    p = sub.add_parser("lm", help="word n-gram language models (KenLM) for beam search")
    verbs = p.add_subparsers(dest="lm_verb", metavar="VERB", required=True)
    b = verbs.add_parser("build", help="estimate an n-gram LM and its lexicon from text")
    b.add_argument("text", help="UTF-8 text, one sentence per line, spelled as the transcripts")
    b.add_argument("--out", required=True, help="LM directory to write (lm.bin, lexicon.txt)")
    b.add_argument("--order", type=int, default=4, help="n-gram order (default 4, the paper's)")
    b.add_argument("--memory", default="20%", help="lmplz's sorting memory (default 20%%)")
    b.set_defaults(func=_build)


def _build(args) -> int:
    info = build_ngram(args.text, args.out, order=args.order, memory=args.memory)
    print(
        f"{args.out}: {info.order}-gram LM on {info.sentences} sentences, {info.words} words, "
        f"lexicon of {info.vocabulary} words"
    )
    return 0

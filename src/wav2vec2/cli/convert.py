"""``wav2vec2 convert [--to {wav2vec2,huggingface}] SRC DEST``."""

from __future__ import annotations

from wav2vec2.conversion import FORMATS, convert_model


def register(sub) -> None:
    p = sub.add_parser(
        "convert", help="convert a HuggingFace, fairseq or our model to our format or to HF"
    )
    p.add_argument("src", help="our directory, HuggingFace directory or hub id, fairseq .pt")
    p.add_argument(
        "dest", help="output directory: new, empty, or an earlier output of convert to replace"
    )
    p.add_argument(
        "--to", choices=FORMATS, default="wav2vec2",
        help="output format (default: ours: config.json + model.safetensors [+ vocab.json])",
    )  # fmt: skip
    p.set_defaults(func=run)


def run(args) -> int:
    ckpt = convert_model(args.src, args.dest, args.to)
    print(f"{args.src} ({ckpt.source}) -> {args.dest} ({args.to})")
    return 0

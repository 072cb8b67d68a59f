"""``wav2vec2 convert [--to {wav2vec2,huggingface}] SRC DEST``."""

from __future__ import annotations

from wav2vec2.checkpoint.model_dir import save_model_dir
from wav2vec2.interop.huggingface import write_hf_dir
from wav2vec2.loading import build_model, read_checkpoint


def register(sub) -> None:
    p = sub.add_parser(
        "convert", help="convert a HuggingFace, fairseq or our model to our format or to HF"
    )
    p.add_argument("src", help="our directory, HuggingFace directory or hub id, fairseq .pt")
    p.add_argument("dest", help="output directory")
    p.add_argument(
        "--to", choices=("wav2vec2", "huggingface"), default="wav2vec2",
        help="output format (default: ours: config.json + model.safetensors [+ vocab.json])",
    )  # fmt: skip
    p.set_defaults(func=run)


def run(args) -> int:
    ckpt = read_checkpoint(args.src)
    model = build_model(ckpt)  # validates that weights and config agree
    if args.to == "huggingface":
        write_hf_dir(model.state_dict(), ckpt.config, ckpt.vocab, args.dest)
    else:
        save_model_dir(model, args.dest, ckpt.vocab)
    print(f"{args.src} ({ckpt.source}) -> {args.dest} ({args.to})")
    return 0

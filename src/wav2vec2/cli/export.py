"""``wav2vec2 export onnx MODEL OUT.onnx [--int8]``: a CTC model as one ONNX file (graph,
weights, vocabulary and config) that ONNX Runtime runs alone (:mod:`wav2vec2.onnx_export`)."""

from __future__ import annotations

from wav2vec2.onnx_export import export_onnx


def register(sub) -> None:
    p = sub.add_parser("export", help="export a CTC model for other runtimes (ONNX)")
    formats = p.add_subparsers(dest="format", metavar="FORMAT", required=True)
    o = formats.add_parser(
        "onnx",
        help="one .onnx file: dynamic batch and length, padding-exact, vocabulary inside",
    )
    o.add_argument("model", help="our directory, HuggingFace directory or hub id, fairseq .pt")
    o.add_argument("out", help="the .onnx file to write: new, or an earlier export to replace")
    o.add_argument(
        "--int8", action="store_true",
        help="int8 weights and activations for the MatMuls (faster on CPUs, approximate: "
        "see docs/benchmarks.md)",
    )  # fmt: skip
    o.set_defaults(func=run)


def run(args) -> int:
    export_onnx(args.model, args.out, args.int8)
    kind = "int8" if args.int8 else "fp32"
    print(f"{args.model} -> {args.out} (ONNX, {kind})")
    return 0

"""``wav2vec2 info MODEL``: config, parameter count, receptive field and frame rate."""

from __future__ import annotations

import json

from wav2vec2.loading import build_model, read_checkpoint


def register(sub) -> None:
    p = sub.add_parser("info", help="describe a model (ours, HuggingFace, fairseq or hub id)")
    p.add_argument("model", help="model directory, fairseq .pt, or HuggingFace hub id")
    p.add_argument("--json", action="store_true", help="print the full config as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    ckpt = read_checkpoint(args.model)
    model = build_model(ckpt)
    cfg = ckpt.config
    if args.json:
        print(json.dumps({"source": ckpt.source, "config": cfg.to_dict()}, indent=2))
        return 0
    fe, tr = cfg.feature_encoder, cfg.transformer
    rf = fe.receptive_field
    heads = []
    if cfg.quantizer is not None:
        heads.append(f"quantizer {cfg.quantizer.groups}x{cfg.quantizer.entries}")
    if cfg.vocab_size is not None:
        heads.append(f"CTC over {cfg.vocab_size} units")
    rows = [
        ("format", ckpt.source),
        ("parameters", f"{model.num_parameters():,}"),
        ("feature encoder", f"{len(fe.conv_layers)} conv layers, {fe.dim} channels, "
         f"{fe.norm} norm, conv bias {fe.conv_bias}"),
        ("receptive field", f"{rf} samples ({1000 * rf / cfg.sample_rate:g} ms)"),
        ("frame rate", f"{cfg.frame_rate:g} frames/s (stride {fe.stride} samples, "
         f"{1000 * fe.stride / cfg.sample_rate:g} ms)"),
        ("transformer", f"{tr.layers} blocks x {tr.dim} ({tr.heads} heads, ffn {tr.ffn_dim}), "
         f"{'pre' if tr.layer_norm_first else 'post'}-LN"),
        ("positional conv", f"kernel {tr.pos_conv_kernel}, {tr.pos_conv_groups} groups"),
        ("heads", ", ".join(heads) or "none (encoder only)"),
        ("normalize waveform", str(cfg.normalize_waveform)),
    ]  # fmt: skip
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    return 0

"""Our parameter names -> fairseq's, written independently of the reader's table, so the
tests check the converter against a second spelling of the same mapping."""

from __future__ import annotations

import re

_TABLE: tuple[tuple[str, str], ...] = (
    (r"feature_encoder\.blocks\.(\d+)\.conv\.", r"feature_extractor.conv_layers.\1.0."),
    # {norm} is "2" for group norm (conv, dropout, GroupNorm, GELU) and "2.1" for layer
    # norm (conv, dropout, Sequential(TransposeLast, LayerNorm, TransposeLast), GELU).
    (r"feature_encoder\.blocks\.(\d+)\.norm\.", r"feature_extractor.conv_layers.\1.{norm}."),
    (r"feature_norm\.", "layer_norm."),
    (r"feature_projection\.", "post_extract_proj."),
    (r"mask_embedding$", "mask_emb"),
    (r"encoder\.pos_conv\.conv\.parametrizations\.weight\.original0$",
     "encoder.pos_conv.0.weight_g"),
    (r"encoder\.pos_conv\.conv\.parametrizations\.weight\.original1$",
     "encoder.pos_conv.0.weight_v"),
    (r"encoder\.pos_conv\.conv\.", "encoder.pos_conv.0."),
    (r"encoder\.layers\.(\d+)\.attention_norm\.", r"encoder.layers.\1.self_attn_layer_norm."),
    (r"encoder\.layers\.(\d+)\.attention\.", r"encoder.layers.\1.self_attn."),
    (r"encoder\.layers\.(\d+)\.feed_forward\.", r"encoder.layers.\1."),
    (r"encoder\.layers\.(\d+)\.final_norm\.", r"encoder.layers.\1.final_layer_norm."),
    (r"encoder\.layer_norm\.", "encoder.layer_norm."),
    (r"quantizer\.codevectors$", "quantizer.vars"),
    (r"(quantizer\.weight_proj|project_q|final_proj)\.", r"\1."),
)  # fmt: skip


def fairseq_name(key: str, layer_norm: bool) -> str:
    """fairseq's name for our parameter ``key`` (not for the CTC head)."""
    for pattern, target in _TABLE:
        m = re.match(pattern, key)
        if m:
            target = target.replace("{norm}", "2.1" if layer_norm else "2")
            return m.expand(target) + key[m.end() :]
    raise AssertionError(f"no fairseq name for {key}")

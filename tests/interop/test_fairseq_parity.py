"""Numerical proof for the fairseq reader: a random transformers model, renamed into fairseq's
parameter names and saved as a fairseq .pt, loads into our model with the same outputs.

transformers' own conversion script maps fairseq -> transformers; the table below is its
inverse. fairseq itself is not needed.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest
import torch
import transformers

from wav2vec2.loading import load_model, load_pretrained, read_checkpoint

ATOL = 1e-4
LETTERS = list("|ETAONISHRDLUCMWFGYPBVK'XJQZ")  # dict.ltr.txt order (fairseq adds 4 specials)

# Tiny shapes. "base": group norm, post-LN, a projection 24 -> 32. "lv60k": layer norm in
# every conv block, conv bias, pre-LN. "noproj": conv width == model width, so fairseq has no
# post_extract_proj (transformers always has one: we make it the identity).
VARIANTS = {
    "base": dict(conv_dim=(24, 24, 24), feat_extract_norm="group", do_stable_layer_norm=False,
                 conv_bias=False, hidden_size=32),
    "lv60k": dict(conv_dim=(24, 24, 24), feat_extract_norm="layer", do_stable_layer_norm=True,
                  conv_bias=True, hidden_size=32),
    "noproj": dict(conv_dim=(32, 32, 32), feat_extract_norm="group", do_stable_layer_norm=False,
                   conv_bias=False, hidden_size=32),
}  # fmt: skip


def hf_config(variant: str) -> transformers.Wav2Vec2Config:
    return transformers.Wav2Vec2Config(
        **VARIANTS[variant],
        conv_kernel=(10, 3, 2),
        conv_stride=(5, 2, 2),
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
        num_codevector_groups=2,
        num_codevectors_per_group=8,
        codevector_dim=16,
        proj_codevector_dim=12,
        vocab_size=4 + len(LETTERS),
    )


# transformers name -> fairseq name (inverse of transformers'
# convert_wav2vec2_original_pytorch_checkpoint_to_pytorch.py MAPPING and load_conv_layer).
HF_TO_FAIRSEQ: tuple[tuple[str, str], ...] = (
    (r"feature_extractor\.conv_layers\.(\d+)\.conv\.", r"feature_extractor.conv_layers.\1.0."),
    (r"feature_extractor\.conv_layers\.(\d+)\.layer_norm\.", "CONV_NORM"),  # depends on mode
    (r"feature_projection\.layer_norm\.", "layer_norm."),
    (r"feature_projection\.projection\.", "post_extract_proj."),
    (r"masked_spec_embed$", "mask_emb"),
    (r"encoder\.pos_conv_embed\.conv\.parametrizations\.weight\.original0$",
     "encoder.pos_conv.0.weight_g"),
    (r"encoder\.pos_conv_embed\.conv\.parametrizations\.weight\.original1$",
     "encoder.pos_conv.0.weight_v"),
    (r"encoder\.pos_conv_embed\.conv\.", "encoder.pos_conv.0."),
    (r"encoder\.layer_norm\.", "encoder.layer_norm."),
    (r"encoder\.layers\.(\d+)\.attention\.", r"encoder.layers.\1.self_attn."),
    (r"encoder\.layers\.(\d+)\.layer_norm\.", r"encoder.layers.\1.self_attn_layer_norm."),
    (r"encoder\.layers\.(\d+)\.feed_forward\.intermediate_dense\.", r"encoder.layers.\1.fc1."),
    (r"encoder\.layers\.(\d+)\.feed_forward\.output_dense\.", r"encoder.layers.\1.fc2."),
    (r"encoder\.layers\.(\d+)\.final_layer_norm\.", r"encoder.layers.\1.final_layer_norm."),
)  # fmt: skip
HF_HEADS_TO_FAIRSEQ = {
    "quantizer.codevectors": "quantizer.vars",
    "quantizer.weight_proj.": "quantizer.weight_proj.",
    "project_q.": "project_q.",
    "project_hid.": "final_proj.",
    "lm_head.": "w2v_encoder.proj.",
}


def fairseq_state(hf_model: torch.nn.Module, cfg: transformers.Wav2Vec2Config, ctc: bool):
    prefix = "w2v_encoder.w2v_model." if ctc else ""
    out = {}
    for key, value in hf_model.state_dict().items():
        for hf, fs in HF_HEADS_TO_FAIRSEQ.items():
            if key.startswith(hf):
                out[fs + key[len(hf) :]] = value.clone()
                break
        else:
            name = key.removeprefix("wav2vec2.")
            for pattern, target in HF_TO_FAIRSEQ:
                m = re.match(pattern, name)
                if m:
                    if target == "CONV_NORM":  # group norm: Sequential[2]; layer norm: [2][1]
                        inner = ".2." if cfg.feat_extract_norm == "group" else ".2.1."
                        target = rf"feature_extractor.conv_layers.\1{inner}"
                    fs_name = m.expand(target) + name[m.end() :]
                    break
            else:
                raise AssertionError(f"no fairseq name for {key}")
            if cfg.hidden_size == cfg.conv_dim[-1] and fs_name.startswith("post_extract_proj"):
                continue  # fairseq has no projection when the widths match
            out[prefix + fs_name] = value.clone()
    return out


def model_options(cfg: transformers.Wav2Vec2Config) -> dict:
    """fairseq Wav2Vec2Config options for the transformers config (old-style spellings)."""
    convs = " + ".join(f"[({d}, {k}, {s})]" for d, k, s in zip(cfg.conv_dim, cfg.conv_kernel,
                                                                 cfg.conv_stride))  # fmt: skip
    return dict(
        extractor_mode="default" if cfg.feat_extract_norm == "group" else "layer_norm",
        conv_feature_layers=convs,
        conv_bias=cfg.conv_bias,
        encoder_layers=cfg.num_hidden_layers,
        encoder_embed_dim=cfg.hidden_size,
        encoder_ffn_embed_dim=cfg.intermediate_size,
        encoder_attention_heads=cfg.num_attention_heads,
        layer_norm_first=cfg.do_stable_layer_norm,
        conv_pos=cfg.num_conv_pos_embeddings,
        conv_pos_groups=cfg.num_conv_pos_embedding_groups,
        quantize_targets=True,
        latent_vars=cfg.num_codevectors_per_group,
        latent_groups=cfg.num_codevector_groups,
        latent_dim=cfg.codevector_dim,
        final_dim=cfg.proj_codevector_dim,
        latent_temp="(2,0.5,0.999995)",
        feature_grad_mult=0.1,
        dropout=0.1,
        encoder_layerdrop=0.05,
    )


def save_old_style(path: Path, state: dict, opts: dict, ctc: bool) -> Path:
    """fairseq 0.10: ckpt["args"] is the training script's argparse.Namespace."""
    pretrain = argparse.Namespace(
        arch="wav2vec2", task="audio_pretraining", criterion="wav2vec", normalize=False,
        sample_rate=16000, loss_weights="[0.1, 10]", **opts,
    )  # fmt: skip
    args = pretrain
    if ctc:
        args = argparse.Namespace(
            arch="wav2vec_ctc", task="audio_pretraining", criterion="ctc", labels="ltr",
            normalize=False, w2v_args=pretrain, w2v_path="/gone/wav2vec_small.pt",
            apply_mask=True, mask_prob=0.5, layerdrop=0.1, feature_grad_mult=0.0,
        )  # fmt: skip
    torch.save({"args": args, "model": state, "optimizer_history": [], "extra_state": {}}, path)
    return path


def save_new_style(path: Path, state: dict, opts: dict, ctc: bool) -> Path:
    """Recent fairseq: ckpt["cfg"] = OmegaConf.to_container(cfg), plain nested dicts."""
    opts = dict(opts, latent_temp=[2.0, 0.5, 0.999995])
    pretrain = {
        "_name": None,
        "common": {"fp16": False},
        "model": {"_name": "wav2vec2", **opts},
        "task": {"_name": "audio_pretraining", "normalize": False, "sample_rate": 16000},
        "criterion": {"_name": "wav2vec", "infonce": True, "loss_weights": [0.1, 10.0]},
    }
    cfg = pretrain
    if ctc:
        pretrain["criterion"] = None  # fairseq's Wav2VecEncoder drops it
        cfg = {
            "model": {"_name": "wav2vec_ctc", "w2v_path": "/gone/x.pt", "apply_mask": True,
                      "normalize": False, "w2v_args": pretrain},
            "task": {"_name": "audio_finetuning", "normalize": False, "labels": "ltr"},
            "criterion": {"_name": "ctc"},
        }  # fmt: skip
    torch.save({"args": None, "cfg": cfg, "model": state, "task_state": {}}, path)
    return path


def make_hf(variant: str, ctc: bool) -> tuple[torch.nn.Module, transformers.Wav2Vec2Config]:
    torch.manual_seed(0)
    cfg = hf_config(variant)
    model = (transformers.Wav2Vec2ForCTC if ctc else transformers.Wav2Vec2ForPreTraining)(cfg)
    model.eval()
    with torch.no_grad():  # random, not-quite-default norms and biases
        for name, p in model.named_parameters():
            if "norm" in name or name.endswith("bias") or "masked_spec_embed" in name:
                p.add_(0.1 * torch.randn_like(p))
        if variant == "noproj":
            proj = model.wav2vec2.feature_projection.projection
            proj.weight.copy_(torch.eye(cfg.hidden_size))
            proj.bias.zero_()
    return model, cfg


def waveforms() -> torch.Tensor:
    return torch.randn(2, 2000, generator=torch.Generator().manual_seed(1))


def assert_close(ours: torch.Tensor, theirs: torch.Tensor, what: str) -> None:
    assert ours.shape == theirs.shape, what
    diff = (ours - theirs).abs().max().item()
    assert diff < ATOL, f"{what}: max abs difference {diff:.2e}"


CASES = [  # (variant, style)
    ("base", "old"),
    ("lv60k", "new"),
    ("noproj", "old"),
    ("base", "new"),
    ("lv60k", "old"),
]


def fairseq_checkpoint(tmp_path, variant, style, ctc):
    """A random transformers model, and the same weights saved as a fairseq checkpoint."""
    hf, cfg = make_hf(variant, ctc=ctc)
    save = save_old_style if style == "old" else save_new_style
    path = save(tmp_path / "checkpoint_best.pt", fairseq_state(hf, cfg, ctc), model_options(cfg),
                ctc=ctc)  # fmt: skip
    return hf, cfg, path


@pytest.mark.parametrize(("variant", "style"), CASES)
def test_pretraining_checkpoint_matches_transformers(tmp_path, variant, style):
    hf, cfg, path = fairseq_checkpoint(tmp_path, variant, style, ctc=False)
    ours = load_model(path)
    assert ours.quantizer is not None and ours.ctc_head is None
    assert ours.cfg.feature_projection == (variant != "noproj")

    x = waveforms()
    with torch.no_grad():
        theirs = hf.wav2vec2(x, output_hidden_states=True)
        enc = ours.encode(x)
        assert_close(enc.last_hidden_state, theirs.last_hidden_state, "last hidden state")
        assert_close(enc.features, theirs.extract_features, "normalized latents")
        for i, (a, b) in enumerate(zip(enc.hidden_states, theirs.hidden_states)):
            if i < len(enc.hidden_states) - 1 or not cfg.do_stable_layer_norm:
                assert_close(a, b, f"hidden state {i}")
        # The pretraining heads: quantize the latents (eval: argmax) and project both sides.
        q_ours = ours.project_q(ours.quantizer(enc.features.flatten(0, 1)).quantized)
        q_theirs = hf.project_q(hf.quantizer(theirs.extract_features)[0]).flatten(0, 1)
        assert_close(q_ours, q_theirs, "projected quantized targets")
        assert_close(
            ours.final_proj(enc.last_hidden_state),
            hf.project_hid(theirs.last_hidden_state),
            "projected context",
        )


@pytest.mark.parametrize(("variant", "style"), CASES)
def test_ctc_checkpoint_matches_transformers(tmp_path, variant, style):
    hf, cfg, path = fairseq_checkpoint(tmp_path, variant, style, ctc=True)
    (tmp_path / "dict.ltr.txt").write_text("".join(f"{c} {100 - i}\n" for i, c in
                                                   enumerate(LETTERS)))  # fmt: skip
    loaded = load_pretrained(path)
    ours = loaded.model
    assert ours.quantizer is None and ours.ctc_head is not None
    assert loaded.vocab is not None and loaded.vocab.tokens[:5] == (
        "<s>",
        "<pad>",
        "</s>",
        "<unk>",
        "|",
    )

    x = waveforms()
    with torch.no_grad():
        theirs = hf(x).logits
        out = ours.ctc(x)
        assert_close(out.logits, theirs, "CTC logits")
        hidden = hf.wav2vec2(x).last_hidden_state
        assert_close(out.encoder.last_hidden_state, hidden, "last hidden state")

    if cfg.feat_extract_norm == "layer":  # padding-aware models: a padded batch, too
        lengths = torch.tensor([2000, 1300])
        x[1, 1300:] = 0.0
        mask = (torch.arange(2000)[None] < lengths[:, None]).long()
        with torch.no_grad():
            theirs = hf(x, attention_mask=mask).logits
            out = ours.ctc(x, lengths)
        valid = out.frame_lengths
        for b in range(2):
            n = int(valid[b])
            assert_close(out.logits[b, :n], theirs[b, :n], f"padded CTC logits, row {b}")


def test_fine_tuning_options_come_from_the_ctc_config(tmp_path):
    hf, cfg = make_hf("base", ctc=True)
    path = save_old_style(tmp_path / "ft.pt", fairseq_state(hf, cfg, True), model_options(cfg),
                          ctc=True)  # fmt: skip
    config = read_checkpoint(path).config
    # fairseq's Wav2VecEncoder replaces these pretraining options by the fine-tuning ones.
    assert config.transformer.layerdrop == 0.1
    assert config.feature_encoder.grad_scale == 0.0
    assert config.transformer.dropout == 0.0  # fine-tuning default, not pretraining's 0.1
    assert config.masking.time_prob == 0.5
    assert config.quantizer is None and config.pretraining is None
    assert config.vocab_size == 4 + len(LETTERS)

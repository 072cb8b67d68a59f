"""HuggingFace transformers directories <-> our config, weights and vocabulary.

Reads ``Wav2Vec2Model``, ``Wav2Vec2ForPreTraining`` and ``Wav2Vec2ForCTC`` directories
(config.json + model.safetensors, sharded safetensors, or pytorch_model.bin; both
weight-norm spellings) and writes directories that transformers loads with identical
outputs, including the tokenizer and feature-extractor files its ASR pipeline needs.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from wav2vec2.atomic import (
    atomic_dir,
    check_replaceable_dir,
    write_safetensors_atomic,
    write_text_atomic,
)
from wav2vec2.checkpoint.model_dir import LoadedCheckpoint, load_safetensors
from wav2vec2.config import (
    FeatureEncoderConfig,
    MaskingConfig,
    PretrainingConfig,
    QuantizerConfig,
    TransformerConfig,
    Wav2Vec2Config,
)
from wav2vec2.errors import Wav2Vec2Error
from wav2vec2.vocab import WORD_DELIMITER, Vocabulary

# Our parameter names <-> transformers' (without the "wav2vec2." prefix of the task heads).
# {i} is a layer index. Ordered: the first matching pattern wins.
KEY_TABLE: tuple[tuple[str, str], ...] = (
    ("feature_encoder.blocks.{i}.conv.", "feature_extractor.conv_layers.{i}.conv."),
    ("feature_encoder.blocks.{i}.norm.", "feature_extractor.conv_layers.{i}.layer_norm."),
    ("feature_norm.", "feature_projection.layer_norm."),
    ("feature_projection.", "feature_projection.projection."),
    ("mask_embedding", "masked_spec_embed"),
    ("encoder.pos_conv.conv.", "encoder.pos_conv_embed.conv."),
    ("encoder.layer_norm.", "encoder.layer_norm."),
    ("encoder.layers.{i}.attention.", "encoder.layers.{i}.attention."),
    ("encoder.layers.{i}.attention_norm.", "encoder.layers.{i}.layer_norm."),
    ("encoder.layers.{i}.feed_forward.fc1.", "encoder.layers.{i}.feed_forward.intermediate_dense."),
    ("encoder.layers.{i}.feed_forward.fc2.", "encoder.layers.{i}.feed_forward.output_dense."),
    ("encoder.layers.{i}.final_norm.", "encoder.layers.{i}.final_layer_norm."),
)
# Heads live outside the "wav2vec2." prefix in transformers.
HEAD_TABLE: tuple[tuple[str, str], ...] = (
    ("quantizer.", "quantizer."),
    ("project_q.", "project_q."),
    ("final_proj.", "project_hid."),
    ("ctc_head.", "lm_head."),
)
_WEIGHT_NORM_OLD = {"weight_g": "parametrizations.weight.original0",
                    "weight_v": "parametrizations.weight.original1"}  # fmt: skip


def _compile(table, src: int, dst: int) -> list[tuple[re.Pattern, str]]:
    """Rows of "a.{i}.b." names -> (regex matching the source prefix, target template)."""
    return [
        (re.compile("^" + re.escape(row[src]).replace(re.escape("{i}"), r"(\d+)")), row[dst])
        for row in table
    ]


_OURS_TO_HF = _compile(KEY_TABLE, 0, 1)
_HF_TO_OURS = _compile(KEY_TABLE, 1, 0)


def _rename(key: str, rules) -> str | None:
    for pattern, target in rules:
        m = pattern.match(key)
        if m:
            head = target.replace("{i}", m.group(1)) if m.groups() else target
            return head + key[m.end() :]
    return None


def hf_key_to_ours(key: str) -> str | None:
    for name in _WEIGHT_NORM_OLD:
        if key.endswith(f"conv.{name}"):
            key = key[: -len(name)] + _WEIGHT_NORM_OLD[name]
    if key.startswith("wav2vec2."):
        return _rename(key[len("wav2vec2.") :], _HF_TO_OURS)
    for ours, hf in HEAD_TABLE:
        if key.startswith(hf):
            return ours + key[len(hf) :]
    return _rename(key, _HF_TO_OURS)  # a bare Wav2Vec2Model


def our_key_to_hf(key: str) -> str:
    for ours, hf in HEAD_TABLE:
        if key.startswith(ours):
            return hf + key[len(ours) :]
    renamed = _rename(key, _OURS_TO_HF)
    if renamed is None:
        raise KeyError(f"no transformers name for parameter {key!r}")
    return "wav2vec2." + renamed


# -- configs ---------------------------------------------------------------------------------


def config_from_hf(hf: dict[str, Any], has_quantizer: bool, has_ctc: bool) -> Wav2Vec2Config:
    """transformers' config.json -> ours. Options transformers lacks (temperature schedule,
    feature penalty, ...) come from our config when it was stored there on export."""
    for key, want in (("feat_extract_activation", "gelu"), ("hidden_act", "gelu")):
        if hf.get(key, want) != want:
            raise Wav2Vec2Error(f"unsupported {key}={hf[key]!r} (only gelu)")
    if hf.get("add_adapter") or hf.get("adapter_attn_dim"):
        raise Wav2Vec2Error("models with adapters are not supported")
    base = (
        Wav2Vec2Config.from_dict(hf["wav2vec2"]) if isinstance(hf.get("wav2vec2"), dict) else None
    )
    conv = tuple(
        (int(c), int(k), int(s))
        for c, k, s in zip(hf["conv_dim"], hf["conv_kernel"], hf["conv_stride"], strict=True)
    )
    fe_base = base.feature_encoder if base else FeatureEncoderConfig()
    feature_encoder = FeatureEncoderConfig(
        conv_layers=conv,
        norm=hf.get("feat_extract_norm", "group"),
        conv_bias=bool(hf.get("conv_bias", False)),
        grad_scale=fe_base.grad_scale,
    )
    tr_base = base.transformer if base else TransformerConfig()
    transformer = TransformerConfig(
        dim=hf["hidden_size"],
        layers=hf["num_hidden_layers"],
        heads=hf["num_attention_heads"],
        ffn_dim=hf["intermediate_size"],
        layer_norm_first=bool(hf.get("do_stable_layer_norm", False)),
        layer_norm_eps=float(hf.get("layer_norm_eps", 1e-5)),
        pos_conv_kernel=hf.get("num_conv_pos_embeddings", 128),
        pos_conv_groups=hf.get("num_conv_pos_embedding_groups", 16),
        pos_conv_weight_norm=tr_base.pos_conv_weight_norm,
        dropout=float(hf.get("hidden_dropout", 0.1)),
        attention_dropout=float(hf.get("attention_dropout", 0.1)),
        activation_dropout=float(hf.get("activation_dropout", 0.1)),
        encoder_input_dropout=float(hf.get("hidden_dropout", 0.1)),
        layerdrop=float(hf.get("layerdrop", 0.1)),
    )
    quantizer = pretraining = None
    if has_quantizer:
        q_base = base.quantizer if base and base.quantizer else QuantizerConfig()
        quantizer = QuantizerConfig(
            groups=hf.get("num_codevector_groups", 2),
            entries=hf.get("num_codevectors_per_group", 320),
            codevector_dim=hf.get("codevector_dim", 256),
            temperature_start=q_base.temperature_start,
            temperature_end=q_base.temperature_end,
            temperature_decay=q_base.temperature_decay,
        )
        p_base = base.pretraining if base and base.pretraining else PretrainingConfig()
        pretraining = PretrainingConfig(
            num_negatives=hf.get("num_negatives", 100),
            logit_temp=float(hf.get("contrastive_logits_temperature", 0.1)),
            diversity_weight=float(hf.get("diversity_loss_weight", 0.1)),
            feature_penalty_weight=p_base.feature_penalty_weight,
            final_dim=hf.get("proj_codevector_dim", 256),
            dropout_features=float(hf.get("feat_quantizer_dropout", 0.0)),
        )
    m_base = base.masking if base else MaskingConfig()
    masking = MaskingConfig(
        time_prob=float(hf.get("mask_time_prob", 0.05)),
        time_length=hf.get("mask_time_length", 10),
        time_min_masks=hf.get("mask_time_min_masks", 2),
        time_no_overlap=m_base.time_no_overlap,
        time_min_space=m_base.time_min_space,
        require_same_masks=m_base.require_same_masks,
        channel_prob=float(hf.get("mask_feature_prob", 0.0)),
        channel_length=hf.get("mask_feature_length", 10),
        channel_min_masks=hf.get("mask_feature_min_masks", 0),
        channel_no_overlap=m_base.channel_no_overlap,
        channel_min_space=m_base.channel_min_space,
    )
    return Wav2Vec2Config(
        feature_encoder=feature_encoder,
        transformer=transformer,
        quantizer=quantizer,
        pretraining=pretraining,
        masking=masking,
        feature_projection=True,
        dropout_input=float(hf.get("feat_proj_dropout", 0.1)),
        normalize_waveform=base.normalize_waveform if base else feature_encoder.norm == "layer",
        vocab_size=hf.get("vocab_size") if has_ctc else None,
        final_dropout=float(hf.get("final_dropout", 0.0)),
    )


def config_to_hf(cfg: Wav2Vec2Config, vocab: Vocabulary | None) -> dict[str, Any]:
    fe, tr, m = cfg.feature_encoder, cfg.transformer, cfg.masking
    if cfg.quantizer is not None and cfg.pretraining is not None:
        arch = "Wav2Vec2ForPreTraining"
    elif cfg.vocab_size is not None:
        arch = "Wav2Vec2ForCTC"
    else:
        arch = "Wav2Vec2Model"
    if fe.norm == "none":
        raise Wav2Vec2Error("transformers has no feature encoder without normalization")
    out: dict[str, Any] = {
        "model_type": "wav2vec2",
        "architectures": [arch],
        "conv_dim": [c for c, _, _ in fe.conv_layers],
        "conv_kernel": [k for _, k, _ in fe.conv_layers],
        "conv_stride": [s for _, _, s in fe.conv_layers],
        "num_feat_extract_layers": len(fe.conv_layers),
        "conv_bias": fe.conv_bias,
        "feat_extract_norm": fe.norm,
        "feat_extract_activation": "gelu",
        "hidden_size": tr.dim,
        "num_hidden_layers": tr.layers,
        "num_attention_heads": tr.heads,
        "intermediate_size": tr.ffn_dim,
        "hidden_act": "gelu",
        "do_stable_layer_norm": tr.layer_norm_first,
        "layer_norm_eps": tr.layer_norm_eps,
        "num_conv_pos_embeddings": tr.pos_conv_kernel,
        "num_conv_pos_embedding_groups": tr.pos_conv_groups,
        "hidden_dropout": tr.dropout,
        "attention_dropout": tr.attention_dropout,
        "activation_dropout": tr.activation_dropout,
        "layerdrop": tr.layerdrop,
        "feat_proj_dropout": cfg.dropout_input,
        "final_dropout": cfg.final_dropout,
        "apply_spec_augment": True,
        "mask_time_prob": m.time_prob,
        "mask_time_length": m.time_length,
        "mask_time_min_masks": m.time_min_masks,
        "mask_feature_prob": m.channel_prob,
        "mask_feature_length": m.channel_length,
        "mask_feature_min_masks": m.channel_min_masks,
        "ctc_loss_reduction": "sum",
        "ctc_zero_infinity": True,
        "output_hidden_size": tr.dim,
        # Our full config, so that ours -> transformers -> ours loses nothing.
        "wav2vec2": cfg.to_dict(),
    }
    if cfg.quantizer is not None and cfg.pretraining is not None:
        out.update(
            num_codevector_groups=cfg.quantizer.groups,
            num_codevectors_per_group=cfg.quantizer.entries,
            codevector_dim=cfg.quantizer.codevector_dim,
            proj_codevector_dim=cfg.pretraining.final_dim,
            num_negatives=cfg.pretraining.num_negatives,
            contrastive_logits_temperature=cfg.pretraining.logit_temp,
            diversity_loss_weight=cfg.pretraining.diversity_weight,
            feat_quantizer_dropout=cfg.pretraining.dropout_features,
        )
    if cfg.vocab_size is not None:
        out["vocab_size"] = cfg.vocab_size
        if vocab is not None:
            hf_vocab, _ = vocab.to_hf()
            out["pad_token_id"] = vocab.blank  # transformers' CTC blank
            out["bos_token_id"] = hf_vocab.get("<s>")
            out["eos_token_id"] = hf_vocab.get("</s>")
    return out


# -- reading ---------------------------------------------------------------------------------


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise Wav2Vec2Error(f"not valid JSON ({exc})", path) from None
    if not isinstance(data, dict):
        raise Wav2Vec2Error("expected a JSON object", path)
    return data


def read_hf_weights(path: Path) -> dict[str, Tensor]:
    """model.safetensors, a sharded safetensors index, or pytorch_model.bin (read with
    ``weights_only=True``: no pickled code runs)."""
    if (path / "model.safetensors").is_file():
        return load_safetensors(path / "model.safetensors")
    index = path / "model.safetensors.index.json"
    if index.is_file():
        shards = sorted(set(_read_json(index).get("weight_map", {}).values()))
        state: dict[str, Tensor] = {}
        for shard in shards:
            state.update(load_safetensors(path / shard))
        return state
    binary = path / "pytorch_model.bin"
    if binary.is_file():
        try:
            state = torch.load(binary, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises many types for corrupt or unsafe files
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise Wav2Vec2Error(f"cannot read weights ({reason})", binary) from None
        if not isinstance(state, dict):
            raise Wav2Vec2Error("not a state dict", binary)
        return state
    raise Wav2Vec2Error("no model.safetensors or pytorch_model.bin", path)


def read_hf_vocab(path: Path) -> Vocabulary | None:
    vocab_file = path / "vocab.json"
    if not vocab_file.is_file():
        return None
    specials: dict[str, Any] = {}
    for name in ("special_tokens_map.json", "tokenizer_config.json"):
        if (path / name).is_file():
            specials.update(_read_json(path / name))

    def token(key: str, default: str) -> str:
        value = specials.get(key, default)
        return value.get("content", default) if isinstance(value, dict) else str(value)

    mapping = _read_json(vocab_file)
    if mapping and all(isinstance(v, dict) for v in mapping.values()):
        raise Wav2Vec2Error("multi-lingual vocab.json is not supported", vocab_file)
    try:
        return Vocabulary.from_hf(
            mapping,
            pad_token=token("pad_token", "<pad>"),
            word_delimiter=token("word_delimiter_token", WORD_DELIMITER),
            unk=token("unk_token", "<unk>"),
        )
    except ValueError as exc:
        raise Wav2Vec2Error(str(exc), vocab_file) from None


def read_hf_dir(path: Path) -> LoadedCheckpoint:
    hf = _read_json(path / "config.json")
    raw = read_hf_weights(path)
    state: dict[str, Tensor] = {}
    for key, value in raw.items():
        ours = hf_key_to_ours(key)
        if ours is not None:
            state[ours] = value
    has_quantizer = any(k.startswith("quantizer.") for k in state)
    has_ctc = any(k.startswith("ctc_head.") for k in state)
    if not any(k.startswith("encoder.layers.") for k in state):
        raise Wav2Vec2Error("weights hold no wav2vec2 encoder", path)
    cfg = config_from_hf(hf, has_quantizer, has_ctc)
    if has_ctc:
        cfg = cfg.with_overrides(vocab_size=int(state["ctc_head.weight"].shape[0]))
    pre = path / "preprocessor_config.json"
    if pre.is_file():
        cfg = cfg.with_overrides(normalize_waveform=bool(_read_json(pre).get("do_normalize")))
    if "mask_embedding" not in state:
        # transformers omits it when its config disables SpecAugment (mask probs 0); it is
        # only used for masking in training, so start from fairseq's uniform init.
        gen = torch.Generator().manual_seed(0)
        state["mask_embedding"] = torch.rand(cfg.transformer.dim, generator=gen)
    vocab = read_hf_vocab(path) if has_ctc else None
    return LoadedCheckpoint(cfg, state, vocab, "huggingface")


# -- writing ---------------------------------------------------------------------------------


def hf_state_dict(model_state: dict[str, Tensor], cfg: Wav2Vec2Config) -> dict[str, Tensor]:
    """Our state dict -> transformers names; fills what transformers always has."""
    state = {}
    for key, value in model_state.items():
        state[our_key_to_hf(key)] = value.detach().contiguous().cpu()
    d = cfg.transformer.dim
    if cfg.masking.time_prob <= 0 and cfg.masking.channel_prob <= 0 and cfg.quantizer is None:
        del state["wav2vec2.masked_spec_embed"]  # transformers has none in this case
    if not cfg.feature_projection:  # transformers always projects: use the identity
        state["wav2vec2.feature_projection.projection.weight"] = torch.eye(d)
        state["wav2vec2.feature_projection.projection.bias"] = torch.zeros(d)
    if not cfg.transformer.pos_conv_weight_norm:  # weight = g * v / |v| with g = |v|
        w = state.pop("wav2vec2.encoder.pos_conv_embed.conv.weight")
        prefix = "wav2vec2.encoder.pos_conv_embed.conv.parametrizations.weight."
        state[prefix + "original0"] = w.norm(dim=(0, 1), keepdim=True)
        state[prefix + "original1"] = w
    return state


# The mark ``write_hf_dir`` leaves in the weights' safetensors header. A folder is replaced
# only when its weights carry it: transformers' save_pretrained (a fine-tuned copy) writes its
# own header without it, so such a folder is never taken for ours.
EXPORT_MARK = {"format": "pt", "written_by": "wav2vec2 convert"}
EXPORT_FILES = {
    "config.json",
    "model.safetensors",
    "preprocessor_config.json",
    "vocab.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
}


def is_hf_export(path: Path) -> bool:
    """Whether ``path`` holds what :func:`write_hf_dir` wrote and nothing else."""
    from safetensors import SafetensorError, safe_open

    names = {p.name for p in path.iterdir()}
    if not names <= EXPORT_FILES or "model.safetensors" not in names:
        return False
    try:
        with safe_open(str(path / "model.safetensors"), "pt") as f:
            return (f.metadata() or {}).get("written_by") == EXPORT_MARK["written_by"]
    except (SafetensorError, OSError, ValueError):
        return False


def check_hf_dest(dest: str | Path) -> None:
    """Refuse a DEST that holds anything but an earlier export of ours (a model from the
    hub or from transformers, our own format, other files)."""
    check_replaceable_dir(dest, is_hf_export, "a HuggingFace export written by wav2vec2")


def write_hf_dir(
    model_state: dict[str, Tensor],
    cfg: Wav2Vec2Config,
    vocab: Vocabulary | None,
    dest: str | Path,
) -> Path:
    """Write a directory that ``transformers`` loads (model, feature extractor, and for CTC
    models the tokenizer) as one folder, put in place whole: an existing DEST (only ever an
    earlier export, :func:`check_hf_dest`) is replaced by a complete one or left as it was."""
    dest = Path(dest)
    check_hf_dest(dest)
    state = hf_state_dict(model_state, cfg)
    files: dict[str, Any] = {
        "preprocessor_config.json": {
            "feature_extractor_type": "Wav2Vec2FeatureExtractor",
            "feature_size": 1,
            "sampling_rate": cfg.sample_rate,
            "padding_value": 0.0,
            "padding_side": "right",
            "do_normalize": cfg.normalize_waveform,
            # Group-norm models were trained on zero-padded batches without masks.
            "return_attention_mask": cfg.feature_encoder.norm == "layer",
        },
        "config.json": config_to_hf(cfg, vocab),
    }
    if cfg.vocab_size is not None and vocab is not None:
        hf_vocab, specials = vocab.to_hf()
        files["vocab.json"] = hf_vocab
        files["tokenizer_config.json"] = {
            "tokenizer_class": "Wav2Vec2CTCTokenizer",
            "processor_class": "Wav2Vec2Processor",
            "do_lower_case": False,
            "replace_word_delimiter_char": " ",
            **specials,
        }
        files["special_tokens_map.json"] = specials
        files["preprocessor_config.json"]["processor_class"] = "Wav2Vec2Processor"
    with atomic_dir(dest) as tmp:
        write_safetensors_atomic(tmp / "model.safetensors", state, EXPORT_MARK)
        for name, data in files.items():
            write_text_atomic(tmp / name, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    return dest

"""fairseq wav2vec 2.0 checkpoints (``.pt``) -> our config, weights and vocabulary.

Two fairseq models are supported: pretraining (``wav2vec2``) and CTC fine-tuned
(``wav2vec_ctc``, the pretraining model under ``w2v_encoder.w2v_model`` plus a linear head
``w2v_encoder.proj``). Their options are stored either old style, ``ckpt["args"]``: one flat
argparse Namespace, or new style, ``ckpt["cfg"]``: omegaconf sections ``model``, ``task``,
``criterion``, ... (pickled as a DictConfig, or as a plain dict by recent fairseq). A CTC
model keeps its pretraining config in ``w2v_args``, in either style.

fairseq is never imported: :mod:`safe_pickle` reads the file without running pickled code,
options absent from the checkpoint take fairseq's defaults (:data:`MODEL_DEFAULTS`,
:data:`CTC_DEFAULTS`), and weights are renamed through :data:`KEY_TABLE`.
"""

from __future__ import annotations

import ast
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from wav2vec2.checkpoint.model_dir import LoadedCheckpoint
from wav2vec2.config import (
    ConvLayer,
    FeatureEncoderConfig,
    MaskingConfig,
    PretrainingConfig,
    QuantizerConfig,
    TransformerConfig,
    Wav2Vec2Config,
)
from wav2vec2.errors import Wav2Vec2Error
from wav2vec2.interop.safe_pickle import safe_load
from wav2vec2.models.wav2vec2 import Wav2Vec2Model
from wav2vec2.vocab import Vocabulary

log = logging.getLogger(__name__)

PRETRAINING, CTC = "wav2vec2", "wav2vec_ctc"  # fairseq model names (cfg.model._name / args.arch)

# fairseq's defaults (fairseq/models/wav2vec/wav2vec2.py, Wav2Vec2Config) for the options we
# read: a checkpoint stores only what its fairseq version knew about.
MODEL_DEFAULTS: dict[str, Any] = {
    "extractor_mode": "default",
    "conv_feature_layers": "[(512, 10, 5)] + [(512, 3, 2)] * 4 + [(512,2,2)] + [(512,2,2)]",
    "conv_bias": False,
    "feature_grad_mult": 1.0,
    "encoder_layers": 12,
    "encoder_embed_dim": 768,
    "encoder_ffn_embed_dim": 3072,
    "encoder_attention_heads": 12,
    "layer_norm_first": False,
    "conv_pos": 128,
    "conv_pos_groups": 16,
    "dropout": 0.1,
    "attention_dropout": 0.1,
    "activation_dropout": 0.0,
    "encoder_layerdrop": 0.0,
    "dropout_input": 0.0,
    "dropout_features": 0.0,
    "final_dim": 0,  # 0: encoder_embed_dim
    "quantize_targets": False,
    "latent_vars": 320,
    "latent_groups": 2,
    "latent_dim": 0,  # 0: final_dim
    "latent_temp": (2.0, 0.5, 0.999995),
    "logit_temp": 0.1,
    "num_negatives": 100,
    "mask_prob": 0.65,
    "mask_length": 10,
    "no_mask_overlap": False,
    "mask_min_space": 1,
    "require_same_masks": True,
    "mask_channel_prob": 0.0,
    "mask_channel_length": 10,
    "no_mask_channel_overlap": False,
    "mask_channel_min_space": 1,
    # Options that change the architecture; we build only the values given here.
    "activation_fn": "gelu",
    "layer_type": "transformer",
    "quantize_input": False,
    "target_glu": False,
    "quantizer_depth": 1,
    "pos_conv_depth": 1,
    "conv_pos_batch_norm": False,
    "crop_seq_to_multiple": 1,
    # Training-only options we do not implement (ignored, with a warning, if changed).
    "mask_selection": "static",
    "mask_channel_selection": "static",
    "mask_channel_before": False,
    "mask_dropout": 0.0,
    "negatives_from_everywhere": False,
    "cross_sample_negatives": 0,
    "codebook_negatives": 0,
}
ARCHITECTURE_OPTIONS = (
    "activation_fn",
    "layer_type",
    "quantize_input",
    "target_glu",
    "quantizer_depth",
    "pos_conv_depth",
    "conv_pos_batch_norm",
    "crop_seq_to_multiple",
)
TRAINING_ONLY_OPTIONS = (
    "mask_selection",
    "mask_channel_selection",
    "mask_channel_before",
    "mask_dropout",
    "negatives_from_everywhere",
    "cross_sample_negatives",
    "codebook_negatives",
)

# fairseq's defaults for a CTC fine-tuning config (wav2vec2_asr.py, Wav2Vec2AsrConfig).
CTC_DEFAULTS: dict[str, Any] = {
    "dropout": 0.0,
    "attention_dropout": 0.0,
    "activation_dropout": 0.0,
    "dropout_input": 0.0,
    "final_dropout": 0.0,
    "layerdrop": 0.0,
    "feature_grad_mult": 0.0,  # 0 freezes the feature encoder
    "apply_mask": False,
    "mask_prob": 0.5,
    "mask_length": 10,
    "no_mask_overlap": False,
    "require_same_masks": True,
    "mask_channel_prob": 0.0,
    "mask_channel_length": 10,
    "no_mask_channel_overlap": False,
    "mask_selection": "static",
    "mask_channel_selection": "static",
    "mask_channel_before": False,
    "mask_dropout": 0.0,
    "layer_type": "transformer",
    "blank_weight": 0.0,
}
# fairseq's Wav2VecEncoder builds the pretrained model with these fine-tuning options in place
# of the pretraining ones: (fine-tuning option, model option).
CTC_OVERRIDES: tuple[tuple[str, str], ...] = (
    ("dropout", "dropout"),
    ("attention_dropout", "attention_dropout"),
    ("activation_dropout", "activation_dropout"),
    ("dropout_input", "dropout_input"),
    ("layerdrop", "encoder_layerdrop"),
    ("feature_grad_mult", "feature_grad_mult"),
    ("mask_prob", "mask_prob"),
    ("mask_length", "mask_length"),
    ("no_mask_overlap", "no_mask_overlap"),
    ("require_same_masks", "require_same_masks"),
    ("mask_channel_prob", "mask_channel_prob"),
    ("mask_channel_length", "mask_channel_length"),
    ("no_mask_channel_overlap", "no_mask_channel_overlap"),
    ("mask_selection", "mask_selection"),
    ("mask_channel_selection", "mask_channel_selection"),
    ("mask_channel_before", "mask_channel_before"),
    ("mask_dropout", "mask_dropout"),
    ("layer_type", "layer_type"),
)

# fairseq parameter names -> ours, for the pretraining model (a CTC model's are the same under
# "w2v_encoder.w2v_model."). A row matches the start of a name; the rest is kept
# ("weight", "bias"). The first matching row wins.
KEY_TABLE: tuple[tuple[str, str], ...] = (
    # Conv block i is Sequential(conv, dropout, norm, GELU): the conv is [0], the norm [2]
    # (group norm, block 0 only), or [2][1] in layer_norm mode, where the LayerNorm sits
    # between two TransposeLast modules.
    (r"feature_extractor\.conv_layers\.(\d+)\.0\.", r"feature_encoder.blocks.\1.conv."),
    (r"feature_extractor\.conv_layers\.(\d+)\.2\.1\.", r"feature_encoder.blocks.\1.norm."),
    (r"feature_extractor\.conv_layers\.(\d+)\.2\.", r"feature_encoder.blocks.\1.norm."),
    (r"layer_norm\.", "feature_norm."),
    (r"post_extract_proj\.", "feature_projection."),
    (r"mask_emb$", "mask_embedding"),
    # pos_conv is Sequential(weight-normed conv, SamePad, GELU); torch's old weight norm
    # names g and v, the parametrization names original0 and original1.
    (r"encoder\.pos_conv\.0\.weight_g$", "encoder.pos_conv.conv.parametrizations.weight.original0"),
    (r"encoder\.pos_conv\.0\.weight_v$", "encoder.pos_conv.conv.parametrizations.weight.original1"),
    (r"encoder\.pos_conv\.0\.", "encoder.pos_conv.conv."),
    (r"encoder\.layer_norm\.", "encoder.layer_norm."),
    (r"encoder\.layers\.(\d+)\.self_attn\.", r"encoder.layers.\1.attention."),
    (r"encoder\.layers\.(\d+)\.self_attn_layer_norm\.", r"encoder.layers.\1.attention_norm."),
    (r"encoder\.layers\.(\d+)\.fc1\.", r"encoder.layers.\1.feed_forward.fc1."),
    (r"encoder\.layers\.(\d+)\.fc2\.", r"encoder.layers.\1.feed_forward.fc2."),
    (r"encoder\.layers\.(\d+)\.final_layer_norm\.", r"encoder.layers.\1.final_norm."),
    (r"quantizer\.vars$", "quantizer.codevectors"),
    (r"quantizer\.weight_proj\.", "quantizer.weight_proj."),
    (r"project_q\.", "project_q."),
    (r"final_proj\.", "final_proj."),
)
_KEY_RULES = [(re.compile(src), dst) for src, dst in KEY_TABLE]
CTC_PREFIX, CTC_HEAD = "w2v_encoder.w2v_model.", "w2v_encoder.proj."
PRETRAINING_HEADS = ("quantizer.", "project_q.", "final_proj.")
# Buffers that are not parameters of any model we build.
IGNORED_KEYS = re.compile(r"(^|\.)_float_tensor$")


class _Problem(Wav2Vec2Error):
    """Something wrong with the checkpoint; read_fairseq_checkpoint adds the path."""


@dataclass(frozen=True)
class FairseqOptions:
    """One fairseq config seen as sections. Old style has a single flat namespace, so all
    three sections are the same dict."""

    name: str | None  # the fairseq model
    model: dict[str, Any]
    task: dict[str, Any]
    criterion: dict[str, Any] | None


def read_fairseq_checkpoint(path: Path) -> LoadedCheckpoint:
    """A fairseq wav2vec2 pretraining or CTC checkpoint -> our config, weights, vocabulary."""
    path = Path(path)
    ckpt = safe_load(path)
    try:
        return _read(ckpt, path)
    except _Problem as exc:
        raise Wav2Vec2Error(str(exc), path) from None


def _read(ckpt: Any, path: Path) -> LoadedCheckpoint:
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("model"), dict):
        raise _Problem("not a fairseq checkpoint (no 'model' weights)")
    raw = ckpt["args"] if ckpt.get("args") is not None else ckpt.get("cfg")
    if not isinstance(raw, dict):
        raise _Problem("not a fairseq checkpoint (neither 'args' nor 'cfg' holds a config)")
    top = _sections(raw)
    if top.name == PRETRAINING:
        pre, fine = top, None
    elif top.name == CTC:
        inner = top.model.get("w2v_args")
        if not isinstance(inner, dict):
            raise _Problem(
                "CTC checkpoint without w2v_args (the pretraining model's config): "
                "cannot tell the architecture"
            )
        pre, fine = _sections(inner), top
        if pre.name != PRETRAINING:
            raise _unsupported(f"{CTC} over {pre.name}")
    else:
        raise _unsupported(top.name)

    weights = {k: v for k, v in ckpt["model"].items() if isinstance(v, Tensor)}
    config = build_config(pre, fine, weights)
    state = map_weights(weights, config, ctc=fine is not None)
    vocab = _read_vocab(path, fine, ckpt, config.vocab_size) if fine is not None else None
    return LoadedCheckpoint(config, state, vocab, "fairseq")


def _unsupported(name: Any) -> _Problem:
    return _Problem(
        f"unsupported fairseq model {name!r} "
        "(only wav2vec2 pretraining and CTC models are supported)"
    )


def _sections(raw: dict[str, Any]) -> FairseqOptions:
    model = raw.get("model")
    if isinstance(model, dict):  # new style: omegaconf sections
        task, criterion = raw.get("task"), raw.get("criterion")
        return FairseqOptions(
            model.get("_name") or model.get("arch"),  # "arch" when fairseq kept old args
            model,
            task if isinstance(task, dict) else {},
            criterion if isinstance(criterion, dict) else None,
        )
    return FairseqOptions(raw.get("arch") or raw.get("_name"), raw, raw, raw)  # old style: flat


def _with_defaults(defaults: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    return {k: options[k] if options.get(k) is not None else v for k, v in defaults.items()}


# -- config ----------------------------------------------------------------------------------


def build_config(
    pre: FairseqOptions, fine: FairseqOptions | None, weights: dict[str, Tensor]
) -> Wav2Vec2Config:
    """fairseq options -> our config. ``fine`` is the CTC fine-tuning config, if any."""
    m = _with_defaults(MODEL_DEFAULTS, pre.model)
    f = _with_defaults(CTC_DEFAULTS, fine.model) if fine is not None else None
    if f is not None:
        for fine_key, model_key in CTC_OVERRIDES:
            m[model_key] = f[fine_key]
        if not f["apply_mask"]:  # fairseq fine-tunes without any masking then
            m["mask_prob"] = m["mask_channel_prob"] = 0.0
    _check_options(m, f)

    if m["extractor_mode"] not in ("default", "layer_norm"):
        raise _Problem(f"unsupported extractor_mode {m['extractor_mode']!r}")
    conv_layers = parse_conv_layers(m["conv_feature_layers"])
    dim = int(m["encoder_embed_dim"])
    final_dim = int(m["final_dim"]) if m["final_dim"] > 0 else dim
    quantizer = pretraining = None
    if fine is None and m["quantize_targets"]:
        temp = _literal(m["latent_temp"], "latent_temp")
        if isinstance(temp, (int, float)):  # a constant temperature
            temp = (temp, temp, 1.0)
        quantizer = QuantizerConfig(
            groups=int(m["latent_groups"]),
            entries=int(m["latent_vars"]),
            codevector_dim=int(m["latent_dim"]) if m["latent_dim"] > 0 else final_dim,
            temperature_start=float(temp[0]),
            temperature_end=float(temp[1]),
            temperature_decay=float(temp[2]),
        )
        diversity, penalty = _loss_weights(pre.criterion)
        pretraining = PretrainingConfig(
            num_negatives=int(m["num_negatives"]),
            logit_temp=float(m["logit_temp"]),
            diversity_weight=diversity,
            feature_penalty_weight=penalty,
            final_dim=final_dim,
            dropout_features=float(m["dropout_features"]),
        )
    elif fine is None:
        log.warning(
            "fairseq model trained without quantized targets (quantize_targets=False): "
            "loading the encoder only, without its pretraining heads"
        )

    vocab_size = None
    if fine is not None:
        if CTC_HEAD + "weight" not in weights:
            raise _Problem(f"CTC checkpoint without its output layer ({CTC_HEAD}weight)")
        vocab_size = int(weights[CTC_HEAD + "weight"].shape[0])
    prefix = CTC_PREFIX if fine is not None else ""
    try:
        return Wav2Vec2Config(
            feature_encoder=FeatureEncoderConfig(
                conv_layers=conv_layers,
                norm="group" if m["extractor_mode"] == "default" else "layer",
                conv_bias=bool(m["conv_bias"]),
                grad_scale=float(m["feature_grad_mult"]),
            ),
            transformer=TransformerConfig(
                dim=dim,
                layers=int(m["encoder_layers"]),
                heads=int(m["encoder_attention_heads"]),
                ffn_dim=int(m["encoder_ffn_embed_dim"]),
                layer_norm_first=bool(m["layer_norm_first"]),
                layer_norm_eps=1e-5,  # fairseq's LayerNorm default, not configurable
                pos_conv_kernel=int(m["conv_pos"]),
                pos_conv_groups=int(m["conv_pos_groups"]),
                # Always weight-normed in fairseq, unless someone removed it before saving.
                pos_conv_weight_norm=prefix + "encoder.pos_conv.0.weight" not in weights,
                dropout=float(m["dropout"]),
                attention_dropout=float(m["attention_dropout"]),
                activation_dropout=float(m["activation_dropout"]),
                encoder_input_dropout=float(m["dropout"]),  # fairseq reuses `dropout` there
                layerdrop=float(m["encoder_layerdrop"]),
            ),
            quantizer=quantizer,
            pretraining=pretraining,
            masking=MaskingConfig(
                time_prob=float(m["mask_prob"]),
                time_length=int(m["mask_length"]),
                time_min_masks=2,  # fairseq's apply_mask passes min_masks=2
                time_no_overlap=bool(m["no_mask_overlap"]),
                time_min_space=int(m["mask_min_space"]),
                require_same_masks=bool(m["require_same_masks"]),
                channel_prob=float(m["mask_channel_prob"]),
                channel_length=int(m["mask_channel_length"]),
                channel_min_masks=0,
                channel_no_overlap=bool(m["no_mask_channel_overlap"]),
                channel_min_space=int(m["mask_channel_min_space"]),
            ),
            # fairseq drops post_extract_proj when the widths already match.
            feature_projection=conv_layers[-1][0] != dim,
            dropout_input=float(m["dropout_input"]),
            normalize_waveform=_normalize(pre, fine),
            sample_rate=_sample_rate(pre, fine),
            vocab_size=vocab_size,
            final_dropout=float(f["final_dropout"]) if f is not None else 0.0,
        )
    except (TypeError, ValueError) as exc:
        raise _Problem(f"unusable fairseq model options ({exc})") from None


def _check_options(m: dict[str, Any], f: dict[str, Any] | None) -> None:
    """Refuse options that change the architecture; warn about training-only ones."""
    for key in ARCHITECTURE_OPTIONS:
        if m[key] != MODEL_DEFAULTS[key]:
            raise _Problem(
                f"unsupported fairseq option {key}={m[key]!r} (it changes the architecture; "
                f"only {key}={MODEL_DEFAULTS[key]!r} is supported)"
            )
    ignored = [f"{k}={m[k]!r}" for k in TRAINING_ONLY_OPTIONS if m[k] != MODEL_DEFAULTS[k]]
    if f is not None and f["blank_weight"] != 0:  # fairseq adds it to the blank's logit
        ignored.append(f"blank_weight={f['blank_weight']!r}")
    if ignored:
        log.warning("ignoring fairseq options this implementation lacks: %s", ", ".join(ignored))


def _normalize(pre: FairseqOptions, fine: FairseqOptions | None) -> bool:
    """Whether the model expects zero-mean unit-variance waveforms (fairseq task.normalize;
    a CTC model repeats it in its own config, which must agree with the pretraining one)."""
    candidates = [pre.task.get("normalize"), pre.model.get("normalize")]
    if fine is not None:
        candidates = [fine.model.get("normalize"), fine.task.get("normalize"), *candidates]
    return bool(_first_set(*candidates, default=False, kind=bool))


def _sample_rate(pre: FairseqOptions, fine: FairseqOptions | None) -> int:
    candidates = [pre.task.get("sample_rate")]
    if fine is not None:
        candidates.insert(0, fine.task.get("sample_rate"))
    return int(_first_set(*candidates, default=16_000, kind=int))


def _first_set(*values: Any, default: Any, kind: type | None = None) -> Any:
    for v in values:
        # An unresolved omegaconf interpolation stays a string: skip it.
        if v is not None and (kind is None or isinstance(v, kind)):
            return v
    return default


def _loss_weights(criterion: dict[str, Any] | None) -> tuple[float, float]:
    """fairseq's wav2vec criterion: loss_weights weigh the extra losses [diversity, feature
    penalty]; one weight applies to both; None means no extra losses."""
    if criterion is None or "loss_weights" not in criterion:
        default = PretrainingConfig()  # not recorded: the paper's BASE recipe
        return default.diversity_weight, default.feature_penalty_weight
    weights = _literal(criterion["loss_weights"], "loss_weights")
    if weights is None:
        return 0.0, 0.0
    weights = [float(w) for w in (weights if isinstance(weights, (list, tuple)) else [weights])]
    if len(weights) == 1:
        weights = weights * 2
    weights += [0.0] * (2 - len(weights))
    return weights[0], weights[1]


def _literal(value: Any, name: str) -> Any:
    """Old fairseq kept some options as Python source strings ("(2,0.5,0.999995)")."""
    if not isinstance(value, str):
        return value
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError):
        raise _Problem(f"cannot parse fairseq option {name}={value!r}") from None


def parse_conv_layers(spec: Any) -> tuple[ConvLayer, ...]:
    """fairseq's conv_feature_layers, e.g. "[(512, 10, 5)] + [(512, 3, 2)] * 4 + [(512,2,2)] * 2".

    fairseq eval()s this string. We evaluate only what such strings contain: list and tuple
    literals of integers, ``+`` between lists and ``*`` by an integer.
    """
    try:
        value = _eval_conv(ast.parse(spec, mode="eval").body) if isinstance(spec, str) else spec
        layers = tuple(tuple(int(x) for x in layer) for layer in value)
        if not layers or any(len(layer) != 3 or min(layer) <= 0 for layer in layers):
            raise ValueError("expected (channels, kernel, stride) triples")
    except (SyntaxError, ValueError, TypeError) as exc:
        raise _Problem(f"cannot parse conv_feature_layers {spec!r} ({exc})") from None
    return layers  # type: ignore[return-value]


def _eval_conv(node: ast.AST) -> Any:
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    if isinstance(node, (ast.List, ast.Tuple)):
        items = [_eval_conv(e) for e in node.elts]
        return items if isinstance(node, ast.List) else tuple(items)
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mult)):
        left, right = _eval_conv(node.left), _eval_conv(node.right)
        if isinstance(node.op, ast.Add) and isinstance(left, list) and isinstance(right, list):
            return left + right
        if isinstance(node.op, ast.Mult):
            seq, n = (left, right) if isinstance(left, list) else (right, left)
            if isinstance(seq, list) and type(n) is int and 0 <= n <= 1000:
                return seq * n
    raise ValueError(f"unexpected {ast.dump(node)[:60]}")


def to_fairseq_options(cfg: Wav2Vec2Config) -> tuple[FairseqOptions, FairseqOptions | None]:
    """Our config -> fairseq's options: the inverse of :func:`build_config`.

    Returns (pretraining, fine-tuning): the pretraining model's sections (model: fairseq's
    ``Wav2Vec2Config`` fields, task: ``normalize``/``sample_rate``, criterion:
    ``loss_weights``) and, for a model with a CTC head, the fine-tuning model's options
    (``Wav2Vec2CtcConfig`` fields), else None. ``build_config`` of the result gives ``cfg``
    back. A config fairseq cannot express raises :class:`Wav2Vec2Error` naming the field.
    """
    fe, tr, mk = cfg.feature_encoder, cfg.transformer, cfg.masking
    fixed = {  # ours -> the only value fairseq has
        "feature_encoder.norm": (fe.norm != "none", "group or layer"),
        "feature_encoder.masked_group_norm": (not fe.masked_group_norm, False),
        "transformer.layer_norm_eps": (tr.layer_norm_eps == 1e-5, 1e-5),
        "transformer.pos_conv_weight_norm": (tr.pos_conv_weight_norm, True),
        # fairseq reuses `dropout` on the encoder input
        "transformer.encoder_input_dropout": (
            tr.encoder_input_dropout == tr.dropout,
            f"transformer.dropout ({tr.dropout})",
        ),
        # fairseq's apply_mask passes min_masks=2 for time masks, none for channel masks
        "masking.time_min_masks": (mk.time_min_masks == 2, 2),
        "masking.channel_min_masks": (mk.channel_min_masks == 0, 0),
        # fairseq has post_extract_proj exactly when the widths differ
        "feature_projection": (
            cfg.feature_projection == (fe.dim != tr.dim),
            f"conv width != transformer width ({fe.dim != tr.dim})",
        ),
        "quantizer": (
            (cfg.quantizer is None) == (cfg.pretraining is None),
            "set together with pretraining",
        ),
    }
    for name, (ok, only) in fixed.items():
        if not ok:
            raise Wav2Vec2Error(f"fairseq cannot express config {name} (fairseq has only {only})")
    q, pre = cfg.quantizer, cfg.pretraining
    model: dict[str, Any] = {
        "extractor_mode": "default" if fe.norm == "group" else "layer_norm",
        "conv_feature_layers": repr([tuple(layer) for layer in fe.conv_layers]),
        "conv_bias": fe.conv_bias,
        "feature_grad_mult": fe.grad_scale,
        "encoder_layers": tr.layers,
        "encoder_embed_dim": tr.dim,
        "encoder_ffn_embed_dim": tr.ffn_dim,
        "encoder_attention_heads": tr.heads,
        "layer_norm_first": tr.layer_norm_first,
        "conv_pos": tr.pos_conv_kernel,
        "conv_pos_groups": tr.pos_conv_groups,
        "dropout": tr.dropout,
        "attention_dropout": tr.attention_dropout,
        "activation_dropout": tr.activation_dropout,
        "encoder_layerdrop": tr.layerdrop,
        "dropout_input": cfg.dropout_input,
        "dropout_features": pre.dropout_features if pre is not None else 0.0,
        "final_dim": pre.final_dim if pre is not None else 0,
        "quantize_targets": q is not None,
        "mask_prob": mk.time_prob,
        "mask_length": mk.time_length,
        "no_mask_overlap": mk.time_no_overlap,
        "mask_min_space": mk.time_min_space,
        "require_same_masks": mk.require_same_masks,
        "mask_channel_prob": mk.channel_prob,
        "mask_channel_length": mk.channel_length,
        "no_mask_channel_overlap": mk.channel_no_overlap,
        "mask_channel_min_space": mk.channel_min_space,
    }
    criterion = None
    if q is not None and pre is not None:
        model.update(
            latent_vars=q.entries,
            latent_groups=q.groups,
            latent_dim=q.codevector_dim,
            latent_temp=(q.temperature_start, q.temperature_end, q.temperature_decay),
            logit_temp=pre.logit_temp,
            num_negatives=pre.num_negatives,
        )
        criterion = {"loss_weights": [pre.diversity_weight, pre.feature_penalty_weight]}
    task = {"normalize": cfg.normalize_waveform, "sample_rate": cfg.sample_rate}
    pretraining = FairseqOptions(PRETRAINING, model, task, criterion)
    if cfg.vocab_size is None:
        return pretraining, None
    if q is not None:
        raise Wav2Vec2Error(
            "fairseq cannot express config quantizer with vocab_size (a CTC model has no "
            "pretraining heads)"
        )
    # Wav2VecEncoder builds the pretrained model with these in place of its own options.
    fine = {key: model[model_key] for key, model_key in CTC_OVERRIDES if model_key in model}
    fine.update(
        apply_mask=mk.time_prob > 0 or mk.channel_prob > 0,
        final_dropout=cfg.final_dropout,
        normalize=cfg.normalize_waveform,
    )
    return pretraining, FairseqOptions(CTC, fine, task, None)


# -- weights ---------------------------------------------------------------------------------


def map_weights(
    weights: dict[str, Tensor], config: Wav2Vec2Config, *, ctc: bool
) -> dict[str, Tensor]:
    """fairseq parameter names -> ours, checked against the shapes ``config`` implies."""
    out: dict[str, Tensor] = {}
    unknown: list[str] = []
    for key, value in weights.items():
        if IGNORED_KEYS.search(key):
            continue
        name = key
        if ctc:
            if key.startswith(CTC_HEAD):
                out["ctc_head." + key[len(CTC_HEAD) :]] = value
                continue
            if not key.startswith(CTC_PREFIX):
                unknown.append(key)
                continue
            name = key[len(CTC_PREFIX) :]
        if config.quantizer is None and name.startswith(PRETRAINING_HEADS):
            continue  # fine-tuned, or unquantized targets: no pretraining heads to load
        ours = rename_key(name)
        if ours is None:
            unknown.append(key)
        else:
            out[ours] = value

    expected = _expected_shapes(config)
    if unknown:
        raise _Problem(f"unexpected weights {_few(unknown)} (not a plain wav2vec2 model?)")
    missing = [k for k in expected if k not in out]
    if missing:
        raise _Problem(f"missing weights {_few(missing)} (in our names) for this config")
    extra = [k for k in out if k not in expected]
    if extra:
        raise _Problem(f"weights {_few(extra)} (in our names) do not fit the stored config")
    for k, shape in expected.items():
        if tuple(out[k].shape) != shape:
            raise _Problem(
                f"weight {k} has shape {tuple(out[k].shape)} but the stored config implies {shape}"
            )
    return out


def rename_key(key: str) -> str | None:
    """One fairseq pretraining-model parameter name -> ours (None if not in the table)."""
    for pattern, target in _KEY_RULES:
        m = pattern.match(key)
        if m:
            return m.expand(target) + key[m.end() :]
    return None


def _expected_shapes(config: Wav2Vec2Config) -> dict[str, tuple[int, ...]]:
    with torch.device("meta"):  # shapes only: no memory, no initialization cost
        model = Wav2Vec2Model(config)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _few(keys: list[str]) -> str:
    shown = ", ".join(sorted(keys)[:3])
    return shown + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")


# -- vocabulary ------------------------------------------------------------------------------


def _read_vocab(
    path: Path, fine: FairseqOptions, ckpt: dict[str, Any], vocab_size: int | None
) -> Vocabulary | None:
    """fairseq's ``dict.<labels>.txt`` beside the checkpoint, else the target dictionary
    that fairseq's audio_finetuning task pickles into ``task_state``, else None."""
    labels = fine.task.get("labels") if isinstance(fine.task.get("labels"), str) else None
    for name in dict.fromkeys([labels or "ltr", "ltr"]):
        dict_path = path.parent / f"dict.{name}.txt"
        if dict_path.is_file():
            vocab = Vocabulary.from_fairseq_dict(dict_path)
            if len(vocab) != vocab_size:
                raise Wav2Vec2Error(
                    f"has {len(vocab)} symbols with fairseq's 4 specials, but the CTC head "
                    f"of {path.name} has {vocab_size} outputs",
                    dict_path,
                )
            return vocab
    task_state = ckpt.get("task_state")
    target = task_state.get("target_dictionary") if isinstance(task_state, dict) else None
    symbols = target.get("symbols") if isinstance(target, dict) else None
    if isinstance(symbols, list) and all(isinstance(s, str) for s in symbols):
        try:
            vocab = Vocabulary.from_fairseq_symbols(symbols)
        except ValueError:
            return None
        if len(vocab) == vocab_size:
            return vocab
    log.warning("no dict.ltr.txt beside %s: the CTC model has no vocabulary", path)
    return None

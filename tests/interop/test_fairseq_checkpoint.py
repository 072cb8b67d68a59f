"""fairseq checkpoints, old style (``args``: an argparse.Namespace) and new style (``cfg``: an
omegaconf DictConfig), for pretraining and CTC models: options map onto our config, weights
onto our names, and neither omegaconf nor fairseq is needed to read them.

omegaconf is not installed: the DictConfig objects here come from stand-in classes that
live in modules named like omegaconf's while the checkpoint is *written*; the modules are
removed before it is read. They pickle the way omegaconf 2.x does: a DictConfig's state is
``{"_metadata", "_parent", "_content"}`` (2.1+ drops ``_flags_cache``), ``_content`` maps
keys to child containers or value nodes, and a node's state is ``{"_val", "_metadata",
"_parent"}``.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import enum
import re
import sys
import types
import typing
from pathlib import Path

import pytest
import torch

from fairseq_names import fairseq_name
from wav2vec2.config import (
    BASE,
    LARGE,
    LARGE_LV60K,
    PAPER_CONV_LAYERS,
    SMALL,
    FeatureEncoderConfig,
    MaskingConfig,
    PretrainingConfig,
    QuantizerConfig,
    TransformerConfig,
    Wav2Vec2Config,
)
from wav2vec2.errors import Wav2Vec2Error
from wav2vec2.interop.fairseq import (
    CTC_HEAD,
    build_config,
    parse_conv_layers,
    read_fairseq_checkpoint,
    to_fairseq_options,
)
from wav2vec2.loading import load_pretrained, read_checkpoint
from wav2vec2.models.wav2vec2 import Wav2Vec2Model

# -- a tiny model, in fairseq's options and in ours -------------------------------------------

CONV = "[(32, 10, 5)] + [(32, 3, 2)] * 1 + [(32,2,2)]"
PRETRAIN_OPTIONS = dict(
    extractor_mode="layer_norm",
    conv_feature_layers=CONV,
    conv_bias=True,
    feature_grad_mult=1.0,
    encoder_layers=2,
    encoder_embed_dim=48,
    encoder_ffn_embed_dim=96,
    encoder_attention_heads=2,
    layer_norm_first=True,
    conv_pos=16,
    conv_pos_groups=4,
    dropout=0.0,
    attention_dropout=0.0,
    activation_dropout=0.0,
    encoder_layerdrop=0.0,
    dropout_input=0.0,
    dropout_features=0.0,
    final_dim=24,
    quantize_targets=True,
    latent_vars=8,
    latent_groups=2,
    latent_dim=16,
    latent_temp=(2.0, 0.1, 0.999995),
    logit_temp=0.1,
    num_negatives=10,
    mask_prob=0.65,
    mask_length=10,
    mask_channel_prob=0.0,
)
PRETRAIN_CONFIG = Wav2Vec2Config(
    feature_encoder=FeatureEncoderConfig(
        conv_layers=((32, 10, 5), (32, 3, 2), (32, 2, 2)), norm="layer", conv_bias=True
    ),
    transformer=TransformerConfig(
        dim=48, layers=2, heads=2, ffn_dim=96, layer_norm_first=True, pos_conv_kernel=16,
        pos_conv_groups=4, dropout=0.0, attention_dropout=0.0, encoder_input_dropout=0.0,
        layerdrop=0.0,
    ),
    quantizer=QuantizerConfig(groups=2, entries=8, codevector_dim=16, temperature_end=0.1),
    pretraining=PretrainingConfig(
        num_negatives=10, final_dim=24, feature_penalty_weight=0.0, dropout_features=0.0
    ),
    masking=MaskingConfig(),
    dropout_input=0.0,
    normalize_waveform=True,
)  # fmt: skip
# Fine-tuning options (fairseq's Wav2Vec2CtcConfig) and what they make of the model.
CTC_OPTIONS = dict(
    apply_mask=True, mask_prob=0.5, mask_channel_prob=0.25, mask_channel_length=8,
    layerdrop=0.1, dropout=0.0, attention_dropout=0.0, activation_dropout=0.1,
    feature_grad_mult=0.0, final_dropout=0.05,
)  # fmt: skip
LETTERS = list("|ETAONISHRDLUCMWFGYPBVK'XJQZ")
CTC_CONFIG = Wav2Vec2Config(
    feature_encoder=FeatureEncoderConfig(
        conv_layers=((32, 10, 5), (32, 3, 2), (32, 2, 2)), norm="layer", conv_bias=True,
        grad_scale=0.0,
    ),
    transformer=TransformerConfig(
        dim=48, layers=2, heads=2, ffn_dim=96, layer_norm_first=True, pos_conv_kernel=16,
        pos_conv_groups=4, dropout=0.0, attention_dropout=0.0, activation_dropout=0.1,
        encoder_input_dropout=0.0, layerdrop=0.1,
    ),
    quantizer=None,
    pretraining=None,
    masking=MaskingConfig(time_prob=0.5, channel_prob=0.25, channel_length=8),
    dropout_input=0.0,
    normalize_waveform=True,
    vocab_size=4 + len(LETTERS),
    final_dropout=0.05,
)  # fmt: skip


def fairseq_weights(config: Wav2Vec2Config, ctc: bool) -> tuple[dict, dict]:
    """(our state dict, the same tensors under fairseq's names)."""
    torch.manual_seed(0)
    ours = Wav2Vec2Model(config).state_dict()
    fs = {}
    for key, value in ours.items():
        if key.startswith("ctc_head."):
            fs["w2v_encoder.proj." + key.removeprefix("ctc_head.")] = value
            continue
        name = fairseq_name(key, layer_norm=config.feature_encoder.norm == "layer")
        fs[("w2v_encoder.w2v_model." if ctc else "") + name] = value
    fs["encoder.embed_positions._float_tensor"] = torch.zeros(1)  # a buffer to ignore
    return ours, fs


# -- stand-ins for omegaconf, for writing checkpoints only ------------------------------------

OMEGACONF = {
    "omegaconf.base": ("Metadata", "ContainerMetadata"),
    "omegaconf.dictconfig": ("DictConfig",),
    "omegaconf.listconfig": ("ListConfig",),
    "omegaconf.nodes": ("AnyNode", "StringNode", "IntegerNode", "FloatNode", "BooleanNode",
                        "EnumNode"),
}  # fmt: skip


class _Container:
    def __getstate__(self) -> dict:  # as omegaconf 2.1+: the flags cache is not pickled
        state = dict(self.__dict__)
        state.pop("_flags_cache", None)
        return state


@contextlib.contextmanager
def fake_omegaconf_and_fairseq():
    """Modules named like omegaconf's and fairseq's, present only while pickling."""
    ns = types.SimpleNamespace()
    modules: dict[str, types.ModuleType] = {
        name: types.ModuleType(name) for name in ("omegaconf", "fairseq", "fairseq.dataclass",
                                                  "fairseq.data", "fairseq.data.dictionary",
                                                  "fairseq.dataclass.constants")
    }  # fmt: skip
    for mod_name, classes in OMEGACONF.items():
        modules[mod_name] = module = types.ModuleType(mod_name)
        for cls_name in classes:
            base = (_Container,) if cls_name.endswith("Config") else ()
            cls = type(cls_name, base, {"__module__": mod_name, "__qualname__": cls_name})
            setattr(module, cls_name, cls)
            setattr(ns, cls_name, cls)
    # fairseq's ChoiceEnum values (extractor_mode) and its target Dictionary.
    ns.Choices = enum.Enum("Choices", {"default": "default", "layer_norm": "layer_norm"},
                           module="fairseq.dataclass.constants")  # fmt: skip
    modules["fairseq.dataclass.constants"].Choices = ns.Choices
    ns.Dictionary = type("Dictionary", (), {"__module__": "fairseq.data.dictionary"})
    modules["fairseq.data.dictionary"].Dictionary = ns.Dictionary
    assert not set(modules) & set(sys.modules), "real omegaconf/fairseq must not be installed"
    sys.modules.update(modules)
    try:
        yield ns
    finally:
        for name in modules:
            del sys.modules[name]


def _metadata(ns, cls_name: str, key, **extra):
    meta = getattr(ns, cls_name)()
    fields = dict(ref_type=typing.Any, object_type=None, optional=True, key=key, flags={})
    meta.__dict__.update(fields, **extra)
    return meta


def to_dictconfig(ns, value, parent=None, key=None):
    """A plain nested value -> stand-in omegaconf containers and nodes."""
    if isinstance(value, dict):
        node = ns.DictConfig()
        node.__dict__.update(
            _metadata=_metadata(
                ns, "ContainerMetadata", key, object_type=dict, key_type=typing.Any,
                element_type=typing.Any, resolver_cache=collections.defaultdict(dict),
            ),
            _parent=parent,
            _flags_cache={"readonly": None},
        )  # fmt: skip
        node._content = {k: to_dictconfig(ns, v, node, k) for k, v in value.items()}
        return node
    if isinstance(value, (list, tuple)):
        node = ns.ListConfig()
        meta = _metadata(ns, "ContainerMetadata", key, object_type=list)
        meta.ref_type = typing.Optional[typing.List[typing.Any]]  # noqa: UP006, UP045
        node.__dict__.update(_metadata=meta, _parent=parent, _flags_cache={})
        node._content = [to_dictconfig(ns, v, node, i) for i, v in enumerate(value)]
        return node
    kind = {bool: "BooleanNode", int: "IntegerNode", float: "FloatNode", str: "StringNode"}
    node = getattr(ns, "EnumNode" if isinstance(value, enum.Enum) else
                   kind.get(type(value), "AnyNode"))()  # fmt: skip
    node.__dict__.update(_val=value, _metadata=_metadata(ns, "Metadata", key), _parent=parent)
    return node


# -- writing checkpoints ----------------------------------------------------------------------


def old_style_args(ctc: bool) -> argparse.Namespace:
    # fairseq 0.10 kept latent_temp and loss_weights as source strings.
    opts = dict(PRETRAIN_OPTIONS, latent_temp="(2.0, 0.1, 0.999995)")
    pretrain = argparse.Namespace(
        arch="wav2vec2", task="audio_pretraining", criterion="wav2vec", normalize=True,
        sample_rate=16000, loss_weights="[0.1, 0]", infonce=True, **opts,
    )  # fmt: skip
    if not ctc:
        return pretrain
    return argparse.Namespace(
        arch="wav2vec_ctc", task="audio_pretraining", criterion="ctc", normalize=True,
        labels="ltr", w2v_path="/gone/pretrained.pt", w2v_args=pretrain, **CTC_OPTIONS,
    )  # fmt: skip


def new_style_cfg(ns, ctc: bool):
    model = dict(PRETRAIN_OPTIONS, _name="wav2vec2", extractor_mode=ns.Choices.layer_norm)
    pretrain = {
        "_name": None,
        "common": {"fp16": True, "log_interval": 200},
        "task": {"_name": "audio_pretraining", "normalize": True, "sample_rate": 16000},
        "model": model,
        "criterion": {"_name": "wav2vec", "infonce": True, "loss_weights": [0.1, 0.0],
                      "log_keys": ["prob_perplexity", "code_perplexity", "temp"]},
    }  # fmt: skip
    if not ctc:
        return to_dictconfig(ns, pretrain)
    pretrain["criterion"] = None  # fairseq's Wav2VecEncoder drops it
    return to_dictconfig(ns, {
        "_name": None,
        "task": {"_name": "audio_finetuning", "normalize": True, "labels": "ltr"},
        # normalize is an interpolation, as in fairseq's Wav2Vec2AsrConfig (II("task.normalize")).
        "model": {"_name": "wav2vec_ctc", "w2v_path": "/gone/pretrained.pt",
                  "normalize": "${task.normalize}", "w2v_args": pretrain, **CTC_OPTIONS},
        "criterion": {"_name": "ctc", "zero_infinity": True},
    })  # fmt: skip


def save_checkpoint(path: Path, style: str, ctc: bool, with_dictionary: bool = False) -> dict:
    """Write a fairseq checkpoint; return our state dict for the same weights."""
    ours, fs = fairseq_weights(CTC_CONFIG if ctc else PRETRAIN_CONFIG, ctc)
    with fake_omegaconf_and_fairseq() as ns:
        ckpt = {
            "model": fs,
            "optimizer_history": [{"criterion_name": "Wav2vecCriterion", "num_updates": 7}],
            "extra_state": {"metrics": {}, "previous_training_time": 12.5},
            "last_optimizer_state": {"state": {0: {"exp_avg": torch.zeros(3)}}},
        }
        if style == "old":
            ckpt["args"] = old_style_args(ctc)
        else:
            ckpt["args"], ckpt["cfg"] = None, new_style_cfg(ns, ctc)
        if with_dictionary:  # fairseq's audio_finetuning task pickles its target Dictionary
            dictionary = ns.Dictionary()
            dictionary.__dict__.update(
                bos_word="<s>", unk_word="<unk>", pad_word="<pad>", eos_word="</s>",
                symbols=["<s>", "<pad>", "</s>", "<unk>", *LETTERS], count=[1] * 32,
                indices={}, nspecial=4,
            )  # fmt: skip
            ckpt["task_state"] = {"target_dictionary": dictionary}
        torch.save(ckpt, path)
    return ours


def write_dict_ltr(directory: Path, letters=LETTERS) -> None:
    (directory / "dict.ltr.txt").write_text("".join(f"{c} {99 - i}\n" for i, c in
                                                    enumerate(letters)))  # fmt: skip


def assert_same_state(got: dict, want: dict) -> None:
    assert sorted(got) == sorted(want)
    for k in want:
        assert torch.equal(got[k], want[k]), k


# -- tests ------------------------------------------------------------------------------------


@pytest.mark.parametrize("style", ["old", "new"])
def test_pretraining_checkpoint(tmp_path, style):
    want = save_checkpoint(tmp_path / "checkpoint_best.pt", style, ctc=False)
    assert "omegaconf" not in sys.modules
    ckpt = read_checkpoint(tmp_path / "checkpoint_best.pt")
    assert "omegaconf" not in sys.modules and "fairseq" not in sys.modules
    assert ckpt.source == "fairseq"
    assert ckpt.config == PRETRAIN_CONFIG
    assert ckpt.vocab is None
    assert_same_state(ckpt.state_dict, want)


@pytest.mark.parametrize("style", ["old", "new"])
def test_ctc_checkpoint_with_dict_ltr(tmp_path, style):
    want = save_checkpoint(tmp_path / "checkpoint_best.pt", style, ctc=True)
    write_dict_ltr(tmp_path)
    ckpt = read_checkpoint(tmp_path / "checkpoint_best.pt")
    assert ckpt.config == CTC_CONFIG
    assert_same_state(ckpt.state_dict, want)
    assert ckpt.vocab is not None
    assert ckpt.vocab.tokens == ("<s>", "<pad>", "</s>", "<unk>", *LETTERS)
    assert ckpt.vocab.blank == 0  # fairseq's CTC blank is <s>


def test_ctc_vocabulary_from_task_state(tmp_path):
    save_checkpoint(tmp_path / "model.pt", "new", ctc=True, with_dictionary=True)
    ckpt = read_checkpoint(tmp_path / "model.pt")
    assert ckpt.vocab is not None and ckpt.vocab.tokens[4:] == tuple(LETTERS)
    write_dict_ltr(tmp_path, LETTERS[::-1])  # a dict.ltr.txt beside the file wins
    assert read_checkpoint(tmp_path / "model.pt").vocab.tokens[4:] == tuple(LETTERS[::-1])


def test_ctc_without_any_vocabulary(tmp_path):
    save_checkpoint(tmp_path / "model.pt", "old", ctc=True)
    ckpt = read_checkpoint(tmp_path / "model.pt")
    assert ckpt.vocab is None and ckpt.config.vocab_size == 4 + len(LETTERS)


def test_directory_with_one_checkpoint_and_load_pretrained(tmp_path):
    save_checkpoint(tmp_path / "checkpoint_last.pt", "new", ctc=True)
    write_dict_ltr(tmp_path)
    loaded = load_pretrained(tmp_path)
    model = loaded.model
    assert not model.training and loaded.vocab is not None
    with torch.no_grad():
        out = model.ctc(torch.randn(1, 800))
    assert out.logits.shape == (1, 39, 4 + len(LETTERS))  # 800 samples: 39 frames of 20


def test_absent_options_take_fairseq_defaults(tmp_path):
    """An old checkpoint stores only what its fairseq version knew: the rest is fairseq's
    defaults (not ours): e.g. final_dim 0 -> encoder_embed_dim, latent_dim 0 -> final_dim,
    dropout_input 0, encoder_layerdrop 0, extractor_mode default -> group norm."""
    config = Wav2Vec2Config(
        feature_encoder=FeatureEncoderConfig(conv_layers=((32, 10, 5), (32, 3, 2))),
        transformer=TransformerConfig(dim=32, layers=1, heads=2, ffn_dim=64, pos_conv_kernel=8,
                                      pos_conv_groups=2, layerdrop=0.0),
        quantizer=QuantizerConfig(groups=2, entries=4, codevector_dim=32),
        pretraining=PretrainingConfig(final_dim=32, dropout_features=0.0),
        feature_projection=False,
        dropout_input=0.0,
    )  # fmt: skip
    _, fs = fairseq_weights(config, ctc=False)
    fs = {k.replace(".2.1.", ".2."): v for k, v in fs.items()}  # group norm: Sequential[2]
    args = argparse.Namespace(
        arch="wav2vec2", conv_feature_layers="[(32, 10, 5), (32, 3, 2)]", encoder_layers=1,
        encoder_embed_dim=32, encoder_ffn_embed_dim=64, encoder_attention_heads=2, conv_pos=8,
        conv_pos_groups=2, quantize_targets=True, latent_vars=4,
    )  # fmt: skip
    torch.save({"args": args, "model": fs}, tmp_path / "old.pt")
    got = read_fairseq_checkpoint(tmp_path / "old.pt").config
    assert got == config


@pytest.mark.parametrize(
    ("spec", "want"),
    [
        ("[(512, 10, 5)] + [(512, 3, 2)] * 4 + [(512,2,2)] + [(512,2,2)]", PAPER_CONV_LAYERS),
        ("[(512,10,5)] + [(512,3,2)]*4 + [(512,2,2)]*2", PAPER_CONV_LAYERS),
        ("2 * [(64, 3, 2)]", ((64, 3, 2), (64, 3, 2))),
        ([[16, 4, 2]], ((16, 4, 2),)),
    ],
)
def test_parse_conv_layers(spec, want):
    assert parse_conv_layers(spec) == want


@pytest.mark.parametrize(
    "spec",
    [
        "__import__('os').system('touch /tmp/never')",
        "[(512, 10, 5)] * 10**9",
        "[(512, 10)]",
        "[(512, 10, 5)] + x",
        "[(512.5, 10, 5)]",
        "",
    ],
)
def test_parse_conv_layers_refuses_anything_else(spec):
    with pytest.raises(Wav2Vec2Error, match="conv_feature_layers"):
        parse_conv_layers(spec)


@pytest.mark.parametrize(
    "config",
    [PRETRAIN_CONFIG, CTC_CONFIG, BASE, LARGE, LARGE_LV60K, SMALL,
     SMALL.with_overrides(vocab_size=32, quantizer=None, pretraining=None)],
    ids=["tiny", "tiny-ctc", "base", "large", "large-lv60k", "small", "small-ctc"],
)  # fmt: skip
def test_to_fairseq_options_inverts_build_config(config):
    pre, fine = to_fairseq_options(config)
    assert (fine is None) == (config.vocab_size is None)
    # build_config reads the CTC head's width from the weights, and the weight norm of the
    # positional conv from the absence of a plain weight.
    weights = {CTC_HEAD + "weight": torch.zeros(config.vocab_size, 1)} if fine else {}
    assert build_config(pre, fine, weights) == config


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"transformer.encoder_input_dropout": 0.0}, "transformer.encoder_input_dropout"),
        ({"masking.time_min_masks": 1}, "masking.time_min_masks"),
        ({"feature_encoder.norm": "none"}, "feature_encoder.norm"),
        ({"feature_projection": False}, "feature_projection"),
        ({"transformer.layer_norm_eps": 1e-6}, "transformer.layer_norm_eps"),
    ],
)
def test_to_fairseq_options_refuses_what_fairseq_cannot_express(override, field):
    with pytest.raises(Wav2Vec2Error, match=f"fairseq cannot express config {re.escape(field)}"):
        to_fairseq_options(BASE.with_overrides(**override))

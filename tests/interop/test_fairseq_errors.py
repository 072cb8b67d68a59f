"""One-line errors for checkpoints we cannot read: unsupported fairseq models and options,
weights that do not fit their config, and broken files or directories in any format."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pytest
import torch

from fairseq_names import fairseq_name
from wav2vec2.checkpoint.model_dir import save_model_dir
from wav2vec2.config import (
    FeatureEncoderConfig,
    QuantizerConfig,
    TransformerConfig,
    Wav2Vec2Config,
)
from wav2vec2.errors import Wav2Vec2Error
from wav2vec2.loading import read_checkpoint
from wav2vec2.models.wav2vec2 import Wav2Vec2Model

# A tiny pretraining model (group norm, post-LN) in fairseq's options and in ours (with
# fairseq's defaults for what OPTIONS leaves out).
OPTIONS = dict(
    conv_feature_layers="[(16, 10, 5), (16, 3, 2)]", encoder_layers=1, encoder_embed_dim=16,
    encoder_ffn_embed_dim=32, encoder_attention_heads=2, conv_pos=4, conv_pos_groups=2,
    quantize_targets=True, latent_vars=4, latent_groups=2, latent_dim=8, final_dim=8,
)  # fmt: skip
CONFIG = Wav2Vec2Config(
    feature_encoder=FeatureEncoderConfig(conv_layers=((16, 10, 5), (16, 3, 2))),
    transformer=TransformerConfig(dim=16, layers=1, heads=2, ffn_dim=32, pos_conv_kernel=4,
                                  pos_conv_groups=2),
    quantizer=QuantizerConfig(groups=2, entries=4, codevector_dim=8),
).with_overrides(**{
    "pretraining.final_dim": 8, "pretraining.dropout_features": 0.0, "feature_projection": False,
    "transformer.layerdrop": 0.0, "dropout_input": 0.0,
})  # fmt: skip


def fairseq_weights(prefix: str = "") -> dict[str, torch.Tensor]:
    return {
        prefix + fairseq_name(key, layer_norm=False): value
        for key, value in Wav2Vec2Model(CONFIG).state_dict().items()
    }


def pretraining_args(**changes) -> argparse.Namespace:
    return argparse.Namespace(**{"arch": "wav2vec2", **OPTIONS, **changes})


def save(path: Path, **ckpt) -> Path:
    torch.save(ckpt, path)
    return path


def error_for(source) -> str:
    with pytest.raises(Wav2Vec2Error) as info:
        read_checkpoint(source)
    message = str(info.value)
    assert "\n" not in message, message
    return message


def test_the_valid_checkpoint_reads(tmp_path):
    path = save(tmp_path / "ok.pt", args=pretraining_args(), model=fairseq_weights())
    assert read_checkpoint(path).config == CONFIG


# -- unsupported models and options -----------------------------------------------------------


@pytest.mark.parametrize(
    ("ckpt", "name"),
    [
        # wav2vec 1.0: same trainer, different model.
        (dict(args=argparse.Namespace(arch="wav2vec", task="audio_pretraining")), "wav2vec"),
        (dict(args=None, cfg={"model": {"_name": "transformer_lm", "decoder_layers": 2},
                              "task": {"_name": "language_modeling"}}), "transformer_lm"),
        (dict(args=argparse.Namespace(arch="transformer_lm_gbw")), "transformer_lm_gbw"),
        (dict(cfg={"model": {"_name": "hubert"}, "task": {}}), "hubert"),
        (dict(cfg={"model": {"_name": "data2vec_audio"}}), "data2vec_audio"),
        (dict(cfg={"model": {"_name": "wav2vec_seq2seq", "w2v_args": {}}}), "wav2vec_seq2seq"),
        (dict(cfg={"model": {"_name": "wav2vec_ctc",
                             "w2v_args": {"model": {"_name": "data2vec_audio"}, "task": {}}}}),
         "wav2vec_ctc over data2vec_audio"),
    ],
)  # fmt: skip
def test_unsupported_fairseq_models(tmp_path, ckpt, name):
    path = save(tmp_path / "other.pt", model={"w": torch.zeros(2)}, **ckpt)
    message = error_for(path)
    assert message.startswith(str(path))
    assert f"unsupported fairseq model '{name}'" in message
    assert "only wav2vec2 pretraining and CTC models are supported" in message


@pytest.mark.parametrize(
    "change",
    [
        {"quantize_input": True},
        {"layer_type": "conformer"},
        {"target_glu": True},
        {"activation_fn": "relu"},
        {"pos_conv_depth": 5},
        {"quantizer_depth": 2},
    ],
)
def test_options_that_change_the_architecture(tmp_path, change):
    path = save(tmp_path / "x.pt", args=pretraining_args(**change), model=fairseq_weights())
    ((key, value),) = change.items()
    assert f"unsupported fairseq option {key}={value!r}" in error_for(path)


def test_unknown_extractor_mode(tmp_path):
    args = pretraining_args(extractor_mode="batch_norm")
    path = save(tmp_path / "x.pt", args=args, model=fairseq_weights())
    assert "unsupported extractor_mode 'batch_norm'" in error_for(path)


def test_training_only_options_are_ignored_with_a_warning(tmp_path, caplog):
    args = pretraining_args(cross_sample_negatives=10, mask_selection="normal")
    path = save(tmp_path / "x.pt", args=args, model=fairseq_weights())
    with caplog.at_level(logging.WARNING, logger="wav2vec2.interop.fairseq"):
        read_checkpoint(path)
    assert "cross_sample_negatives=10" in caplog.text and "mask_selection='normal'" in caplog.text


def test_unparsable_option(tmp_path):
    args = pretraining_args(conv_feature_layers="[(16, 10, 5)] + open('x')")
    path = save(tmp_path / "x.pt", args=args, model=fairseq_weights())
    assert "cannot parse conv_feature_layers" in error_for(path)


# -- weights that do not fit -----------------------------------------------------------------


def test_shape_mismatch(tmp_path):
    args = pretraining_args(encoder_ffn_embed_dim=48)  # the weights have 32
    path = save(tmp_path / "x.pt", args=args, model=fairseq_weights())
    message = error_for(path)
    assert "encoder.layers.0.feed_forward.fc1.weight has shape (32, 16)" in message
    assert "(48, 16)" in message


def test_unexpected_weights(tmp_path):
    weights = fairseq_weights()
    weights["label_embs_concat"] = torch.zeros(4, 8)  # HuBERT's, not wav2vec2's
    path = save(tmp_path / "x.pt", args=pretraining_args(), model=weights)
    assert "unexpected weights label_embs_concat" in error_for(path)


def test_missing_weights(tmp_path):
    weights = fairseq_weights()
    del weights["encoder.layers.0.fc2.bias"]
    path = save(tmp_path / "x.pt", args=pretraining_args(), model=weights)
    assert "missing weights encoder.layers.0.feed_forward.fc2.bias" in error_for(path)


def test_layer_count_mismatch(tmp_path):
    path = save(tmp_path / "x.pt", args=pretraining_args(encoder_layers=2), model=fairseq_weights())
    assert "missing weights encoder.layers.1." in error_for(path)


def test_ctc_without_pretraining_config(tmp_path):
    args = argparse.Namespace(arch="wav2vec_ctc", w2v_path="/gone.pt")
    path = save(tmp_path / "x.pt", args=args, model=fairseq_weights("w2v_encoder.w2v_model."))
    assert "CTC checkpoint without w2v_args" in error_for(path)


def test_ctc_without_output_layer(tmp_path):
    args = argparse.Namespace(arch="wav2vec_ctc", w2v_args=pretraining_args())
    path = save(tmp_path / "x.pt", args=args, model=fairseq_weights("w2v_encoder.w2v_model."))
    assert "without its output layer (w2v_encoder.proj.weight)" in error_for(path)


def test_dictionary_that_does_not_fit_the_head(tmp_path):
    weights = {
        k: v for k, v in fairseq_weights("w2v_encoder.w2v_model.").items()
        if not k.startswith(("w2v_encoder.w2v_model.quantizer", "w2v_encoder.w2v_model.project_q",
                             "w2v_encoder.w2v_model.final_proj"))
    }  # fmt: skip
    weights["w2v_encoder.proj.weight"] = torch.zeros(6, 16)
    weights["w2v_encoder.proj.bias"] = torch.zeros(6)
    args = argparse.Namespace(arch="wav2vec_ctc", w2v_args=pretraining_args())
    path = save(tmp_path / "ft.pt", args=args, model=weights)
    assert read_checkpoint(path).config.vocab_size == 6
    (tmp_path / "dict.ltr.txt").write_text("A 5\nB 3\nC 1\n")  # 4 specials + 3 = 7 != 6
    message = error_for(path)
    assert "dict.ltr.txt" in message and "has 7 symbols" in message and "6 outputs" in message


# -- not fairseq checkpoints, broken files and directories ------------------------------------


def test_checkpoint_without_config(tmp_path):
    path = save(tmp_path / "bare.pt", model=fairseq_weights())
    assert "neither 'args' nor 'cfg' holds a config" in error_for(path)


def test_not_a_checkpoint_at_all(tmp_path):
    path = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), path)
    assert "not a fairseq checkpoint (no 'model' weights)" in error_for(path)


def test_truncated_fairseq_checkpoint(tmp_path):
    path = save(tmp_path / "ok.pt", args=pretraining_args(), model=fairseq_weights())
    path.write_bytes(path.read_bytes()[:2000])
    assert "not a readable PyTorch checkpoint" in error_for(path)


def test_missing_path(tmp_path):
    message = error_for(tmp_path / "nowhere" / "model.pt")
    assert message.endswith("no such file or directory")


def test_directory_without_config(tmp_path):
    (tmp_path / "notes.txt").write_text("not a model\n")
    assert "no config.json" in error_for(tmp_path)


def test_truncated_safetensors_in_our_directory(tmp_path):
    model_dir = save_model_dir(Wav2Vec2Model(CONFIG), tmp_path / "ours")
    weights = model_dir / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:500])
    message = error_for(model_dir)
    assert str(weights) in message and "corrupt or truncated" in message

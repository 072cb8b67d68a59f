import json

import pytest

from wav2vec2 import BASE, LARGE, LARGE_LV60K, PRESETS, SMALL, Wav2Vec2Config, Wav2Vec2Model
from wav2vec2.audio import SAMPLE_RATE
from wav2vec2.errors import Wav2Vec2Error
from wav2vec2.training.config import split_setting
from wav2vec2.training.recipes import pretrain_run_config


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_round_trip_through_json(name):
    cfg = PRESETS[name]
    again = Wav2Vec2Config.from_json(json.dumps(json.loads(cfg.to_json())))
    assert again == cfg
    assert isinstance(again.feature_encoder.conv_layers[0], tuple)


def test_configs_saved_before_masked_group_norm_load_with_fairseqs_numerics():
    old = BASE.to_dict()
    del old["feature_encoder"]["masked_group_norm"]  # a checkpoint from before the field
    assert Wav2Vec2Config.from_dict(old) == BASE
    assert not BASE.feature_encoder.masked_group_norm
    on = BASE.with_overrides(**{"feature_encoder.masked_group_norm": True})
    assert Wav2Vec2Config.from_json(on.to_json()) == on != BASE


def test_paper_geometry():
    fe = BASE.feature_encoder
    assert fe.stride == 320 and fe.receptive_field == 400  # 20 ms hop, 25 ms window
    assert BASE.frame_rate == 50
    assert SMALL.feature_encoder.stride == 320 and SMALL.feature_encoder.receptive_field == 400
    assert LARGE_LV60K.transformer.layer_norm_first and LARGE_LV60K.feature_encoder.norm == "layer"
    assert LARGE_LV60K.quantizer.temperature_end == 0.1 and BASE.quantizer.temperature_end == 0.5
    assert not LARGE.transformer.layer_norm_first and LARGE.feature_encoder.norm == "group"
    # feature_grad_mult of fairseq's recipes: base_librispeech and large 0.1, librivox 1.0
    assert BASE.feature_encoder.grad_scale == LARGE.feature_encoder.grad_scale == 0.1
    assert LARGE_LV60K.feature_encoder.grad_scale == 1.0


def test_parameter_counts():
    assert 94e6 < Wav2Vec2Model(BASE).num_parameters() < 96e6  # paper: 95M
    assert 1e6 < Wav2Vec2Model(SMALL).num_parameters() < 8e6


def test_temperature_schedule():
    q = BASE.quantizer
    assert q.temperature(0) == 2.0
    assert q.temperature(10_000_000) == 0.5
    assert abs(q.temperature(100_000) - 2.0 * 0.999995**100_000) < 1e-12


def test_overrides_and_unknown_keys():
    cfg = SMALL.with_overrides(**{"transformer.layers": 2, "vocab_size": 32})
    assert cfg.transformer.layers == 2 and cfg.vocab_size == 32
    with pytest.raises(Wav2Vec2Error, match="unknown config key"):
        SMALL.with_overrides(**{"transformer.nope": 1})
    with pytest.raises(KeyError):
        Wav2Vec2Config.from_dict({**SMALL.to_dict(), "bogus": 1})


def test_settings_split_on_the_first_dot():
    assert split_setting("model.transformer.layers") == ("model", "transformer.layers")
    assert split_setting("train.optim.lr") == ("train", "optim.lr")
    assert split_setting("optim.lr") == ("train", "optim.lr")
    assert split_setting("max_updates") == ("train", "max_updates")
    assert split_setting("model") == ("train", "model")  # no root: an unknown training key
    run = pretrain_run_config("small", {"train.max_updates": 3, "model.vocab_size": 5})
    assert run.train.max_updates == 3 and run.model.vocab_size == 5
    for key in ("model", "modelx.layers", "model.nope", "train.model.dim"):
        with pytest.raises(Wav2Vec2Error, match=f"unknown setting '{key}'"):
            pretrain_run_config("small", {key: 1})
    with pytest.raises(Wav2Vec2Error, match="invalid setting"):
        pretrain_run_config("small", {"data.speed_perturb": [9.0]})


def test_sample_rate_and_receptive_field_come_from_the_config():
    assert BASE.sample_rate == SAMPLE_RATE == 16_000
    assert SMALL.feature_encoder.receptive_field == 400  # the shortest usable utterance
    assert SMALL.feature_encoder.num_frames(SMALL.feature_encoder.receptive_field) == 1
    assert SMALL.feature_encoder.num_frames(SMALL.feature_encoder.receptive_field - 1) == 0

"""The training recipes, and one builder of the run config per run kind.

Pretraining: one recipe per model preset (fairseq's yaml files; SMALL is ours).
Fine-tuning: one recipe per amount of labeled data (paper sec. 4.4 / Table 6), with the values
of fairseq's examples/wav2vec/config/finetuning/base_*.yaml where they differ from the paper.
A fine-tuning recipe is model settings (masking, LayerDrop, dropouts) plus training settings
(updates, learning rate, freeze schedule). The feature encoder is never trained
(feature_grad_mult 0); only the output layer trains for the first ``freeze_updates``.

:func:`pretrain_run_config` and :func:`finetune_run_config` are what the ``pretrain`` and
``finetune`` commands and the demo resolve their settings with: the recipe, then overrides.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from wav2vec2.config import MaskingConfig, Wav2Vec2Config
from wav2vec2.config import preset as model_preset
from wav2vec2.errors import Wav2Vec2Error
from wav2vec2.training.config import (
    DataConfig,
    OptimConfig,
    RunConfig,
    ScheduleConfig,
    TrainConfig,
    apply_overrides,
)
from wav2vec2.vocab import Vocabulary

# -- pretraining -----------------------------------------------------------------------------

# Pretraining recipes per model preset (fairseq's yaml files; SMALL is ours, sized for a
# CPU run of about half an hour).
PRETRAIN_RECIPES: dict[str, TrainConfig] = {
    "small": TrainConfig(
        # 18.8 minutes on 2 CPU cores (4.4-5 updates/s, measured in docs/pretraining.md).
        max_updates=5000,
        log_interval=25,
        valid_interval=250,
        save_interval=250,
        optim=OptimConfig(lr=5e-4, clip_norm=10.0),
        schedule=ScheduleConfig(warmup_updates=100),
        # Four 3-second crops per update: many small updates learn faster on a CPU than
        # few large ones (measured in docs/pretraining.md).
        data=DataConfig(max_tokens=192_000, max_sample_size=48_000, min_sample_size=16_000),
    ),
    # wav2vec2_base_librispeech.yaml: 64 GPUs x 1.4M samples; use update_freq to simulate.
    "base": TrainConfig(),
    # The paper's LARGE on LS-960 (sec. 4.2): lr 3e-4, 320k-sample crops.
    "large": TrainConfig(
        max_updates=250_000,
        optim=OptimConfig(lr=3e-4),
        data=DataConfig(max_tokens=1_200_000, max_sample_size=320_000),
    ),
    # wav2vec2_large_librivox.yaml: 128 GPUs x 1.2M samples, lr 5e-3 as in the file.
    "large_lv60k": TrainConfig(
        max_updates=1_000_000,
        optim=OptimConfig(lr=5e-3),
        data=DataConfig(max_tokens=1_200_000, max_sample_size=320_000),
    ),
}


def pretrain_run_config(preset: str, overrides: Mapping[str, Any]) -> RunConfig:
    """The model preset ``preset`` with its pretraining recipe, then ``overrides`` (dotted
    keys, see :func:`~wav2vec2.training.config.apply_overrides`)."""
    model = model_preset(preset)  # a one-line error for an unknown name
    run = RunConfig("pretrain", model, PRETRAIN_RECIPES[preset.lower()])
    return apply_overrides(run, overrides)


# -- fine-tuning -----------------------------------------------------------------------------


@dataclass(frozen=True)
class FinetuneRecipe:
    max_updates: int
    lr: float
    freeze_updates: int  # fs: freeze_finetune_updates
    time_prob: float  # fs: mask_prob
    channel_prob: float  # fs: mask_channel_prob (span 64)
    layerdrop: float  # fs: layerdrop
    update_freq: int  # fs: update_freq, for 8 GPUs from the yaml's distributed_world_size


FINETUNE_RECIPES: dict[str, FinetuneRecipe] = {
    "10m": FinetuneRecipe(13_000, 5e-5, 10_000, 0.65, 0.25, 0.1, 4),
    "1h": FinetuneRecipe(13_000, 5e-5, 10_000, 0.65, 0.25, 0.1, 4),
    "10h": FinetuneRecipe(20_000, 5e-5, 10_000, 0.65, 0.5, 0.05, 4),
    "100h": FinetuneRecipe(80_000, 3e-5, 0, 0.65, 0.5, 0.1, 4),
    "960h": FinetuneRecipe(320_000, 1e-5, 0, 0.5, 0.1, 0.1, 1),
}


def finetune_model_config(base: Wav2Vec2Config, recipe: FinetuneRecipe) -> Wav2Vec2Config:
    """The pretrained architecture with a CTC head and fine-tuning regularization.

    fairseq's wav2vec_ctc defaults: dropout, attention dropout, input dropout and final
    dropout 0, activation dropout 0.1, masks of 10 steps (time) and 64 channels. The head's
    size (``vocab_size``) is left unset: :func:`finetune_run_config` takes it from the labels'
    dictionary.
    """
    t = base.transformer
    transformer = type(t)(
        **{
            **t.__dict__,
            "dropout": 0.0,
            "attention_dropout": 0.0,
            "activation_dropout": 0.1,
            "encoder_input_dropout": 0.0,
            "layerdrop": recipe.layerdrop,
        }
    )
    masking = MaskingConfig(
        time_prob=recipe.time_prob,
        time_length=10,
        time_min_masks=2,
        require_same_masks=True,
        channel_prob=recipe.channel_prob,
        channel_length=64,
        channel_min_masks=0,
    )
    fe = base.feature_encoder
    return Wav2Vec2Config(
        feature_encoder=type(fe)(**{**fe.__dict__, "grad_scale": 0.0}),  # never trained
        transformer=transformer,
        quantizer=None,
        pretraining=None,
        masking=masking,
        feature_projection=base.feature_projection,
        dropout_input=0.0,
        normalize_waveform=base.normalize_waveform,
        sample_rate=base.sample_rate,
        vocab_size=None,
        final_dropout=0.0,
    )


def finetune_train_config(recipe: FinetuneRecipe) -> TrainConfig:
    return TrainConfig(
        max_updates=recipe.max_updates,
        log_interval=200,
        valid_interval=1000,
        save_interval=1000,
        keep_last=1,
        freeze_updates=recipe.freeze_updates,
        optim=OptimConfig(
            lr=recipe.lr, eps=1e-8, weight_decay=0.0, clip_norm=0.0, update_freq=recipe.update_freq
        ),
        schedule=ScheduleConfig(kind="tri_stage"),
        # Letter labels (SPLIT.ltr, dict.ltr.txt), as fairseq's recipes. Labeled utterances
        # are never cropped: longer ones than max_sample_size are dropped.
        data=DataConfig(
            labels="ltr", max_tokens=3_200_000, max_sample_size=3_200_000, min_sample_size=0
        ),
    )


def finetune_run_config(
    pretrained: Wav2Vec2Config, preset: str, data: Path, overrides: Mapping[str, Any]
) -> RunConfig:
    """Fine-tuning ``pretrained`` on ``data`` with the recipe for ``preset`` of labeled
    data: the recipe, the subsets ``data`` holds (:func:`default_subsets`), then
    ``overrides``. The CTC head gets one output per symbol of the dictionary of the resolved
    labels (``data/dict.<labels>.txt``) unless ``model.vocab_size`` is set."""
    try:
        recipe = FINETUNE_RECIPES[preset]
    except KeyError:
        choices = ", ".join(FINETUNE_RECIPES)
        raise Wav2Vec2Error(
            f"unknown fine-tuning preset {preset!r}; choose from {choices}"
        ) from None
    model = finetune_model_config(pretrained, recipe)
    run = RunConfig("finetune", model, finetune_train_config(recipe))
    run = apply_overrides(run, {**default_subsets(data, preset), **overrides})
    if run.model.vocab_size is None:
        vocab = Vocabulary.for_labels(data, run.train.data.labels)
        run = replace(run, model=replace(run.model, vocab_size=len(vocab)))
    return run


def default_subsets(data: Path, preset: str) -> dict[str, str]:
    """train_<preset>.tsv (the corpus's nested subsets) or train.tsv; valid.tsv or dev.tsv."""
    train = f"train_{preset}" if (data / f"train_{preset}.tsv").is_file() else "train"
    valid = "valid" if (data / "valid.tsv").is_file() else "dev"
    return {"data.train_subset": train, "data.valid_subset": valid}

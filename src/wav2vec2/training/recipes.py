"""Fine-tuning recipes per amount of labeled data (paper sec. 4.4 / Table 6), with the values
of fairseq's examples/wav2vec/config/finetuning/base_*.yaml where they differ from the paper.

Each recipe is model settings (masking, LayerDrop, dropouts) plus training settings
(updates, learning rate, freeze schedule). The feature encoder is never trained
(feature_grad_mult 0); only the output layer trains for the first ``freeze_updates``.
"""

from __future__ import annotations

from dataclasses import dataclass

from wav2vec2.config import MaskingConfig, Wav2Vec2Config
from wav2vec2.training.config import DataConfig, OptimConfig, ScheduleConfig, TrainConfig


@dataclass(frozen=True)
class FinetuneRecipe:
    max_updates: int
    lr: float
    freeze_updates: int  # fs: freeze_finetune_updates
    time_prob: float  # fs: mask_prob
    channel_prob: float  # fs: mask_channel_prob (span 64)
    layerdrop: float  # fs: layerdrop
    update_freq: int  # fs: update_freq, for 8 GPUs from the yaml's distributed_world_size


RECIPES: dict[str, FinetuneRecipe] = {
    "10m": FinetuneRecipe(13_000, 5e-5, 10_000, 0.65, 0.25, 0.1, 4),
    "1h": FinetuneRecipe(13_000, 5e-5, 10_000, 0.65, 0.25, 0.1, 4),
    "10h": FinetuneRecipe(20_000, 5e-5, 10_000, 0.65, 0.5, 0.05, 4),
    "100h": FinetuneRecipe(80_000, 3e-5, 0, 0.65, 0.5, 0.1, 4),
    "960h": FinetuneRecipe(320_000, 1e-5, 0, 0.5, 0.1, 0.1, 1),
}


def finetune_model_config(base: Wav2Vec2Config, recipe: FinetuneRecipe, vocab_size: int):
    """The pretrained architecture with a CTC head and fine-tuning regularization.

    fairseq's wav2vec_ctc defaults: dropout, attention dropout, input dropout and final
    dropout 0, activation dropout 0.1, masks of 10 steps (time) and 64 channels.
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
        vocab_size=vocab_size,
        final_dropout=0.0,
    )


def finetune_train_config(recipe: FinetuneRecipe) -> TrainConfig:
    return TrainConfig(
        max_updates=recipe.max_updates,
        log_interval=200,
        valid_interval=1000,
        save_interval=1000,
        keep_last=1,
        optim=OptimConfig(
            lr=recipe.lr, eps=1e-8, weight_decay=0.0, clip_norm=0.0, update_freq=recipe.update_freq
        ),
        schedule=ScheduleConfig(kind="tri_stage"),
        # Labeled utterances are never cropped: longer ones than max_sample_size are dropped.
        data=DataConfig(max_tokens=3_200_000, max_sample_size=3_200_000, min_sample_size=0),
    )

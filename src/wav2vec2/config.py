"""Model configuration: one tree of frozen, typed dataclasses.

The tree is saved inside every checkpoint (``config.json``) and round-trips through JSON.
Field comments give the fairseq (``fs:``) and transformers (``hf:``) names, so a reader can
map options between the three code bases.

Where the paper and fairseq's code differ, the code wins (and a comment says so).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from wav2vec2.atomic import write_text_atomic
from wav2vec2.audio import SAMPLE_RATE
from wav2vec2.errors import Wav2Vec2Error
from wav2vec2.serialization import dataclass_from_dict, set_dotted

ConvLayer = tuple[int, int, int]  # (out_channels, kernel, stride)

# The paper's feature encoder: 7 blocks, 512 channels, kernels (10,3,3,3,3,2,2),
# strides (5,2,2,2,2,2,2): a total stride of 320 samples (20 ms at 16 kHz) and a receptive
# field of 400 samples (25 ms).
PAPER_CONV_LAYERS: tuple[ConvLayer, ...] = ((512, 10, 5),) + ((512, 3, 2),) * 4 + ((512, 2, 2),) * 2


@dataclass(frozen=True)
class FeatureEncoderConfig:
    """The convolutional feature encoder f: X -> Z."""

    conv_layers: tuple[ConvLayer, ...] = PAPER_CONV_LAYERS  # fs: conv_feature_layers
    # "group": GroupNorm (one group per channel) after the first conv only (BASE, LARGE).
    # "layer": LayerNorm over channels after every conv (LARGE-LV60K).
    # "none": no normalization.
    norm: Literal["group", "layer", "none"] = "group"  # fs: extractor_mode, hf: feat_extract_norm
    conv_bias: bool = False  # fs: conv_bias, hf: conv_bias
    # Gradients flowing into the encoder are multiplied by this (paper sec. 4.2: 0.1 for BASE).
    grad_scale: float = 1.0  # fs: feature_grad_mult
    # Group norm only (ours; neither fairseq nor transformers has it). Given valid lengths,
    # the first block's GroupNorm takes its mean and variance over each row's valid frames
    # only, so each row of a zero-padded batch gets the output it gets alone. False (the
    # default, for training and for loaded checkpoints) keeps fairseq's numerics, whose
    # statistics cover the padding too: fairseq fine-tunes on padded batches that way (its
    # pretraining crops to equal lengths, so there is no padding to differ on) and
    # transformers matches it. The inference engine turns it on so that it can batch
    # group-norm models (``Wav2Vec2Inference``). No parameter depends on it.
    masked_group_norm: bool = False

    @property
    def dim(self) -> int:
        return self.conv_layers[-1][0]

    @property
    def stride(self) -> int:
        """Samples per output frame (320 = 20 ms for the paper's stack)."""
        out = 1
        for _, _, s in self.conv_layers:
            out *= s
        return out

    def num_frames(self, samples, layers: int | None = None):
        """Output frames for ``samples`` input samples: an int, or a tensor of lengths (the
        one place this arithmetic lives; 49 frames for 16000 samples with the paper's stack).
        Each conv layer maps n -> floor((n - kernel) / stride) + 1, never below 0.
        ``layers``: the frames after only the first that many conv layers."""
        n = samples
        for _, k, s in self.conv_layers[:layers]:
            n = (n - k) // s + 1
        return n.clamp(min=0) if hasattr(n, "clamp") else max(n, 0)

    @property
    def receptive_field(self) -> int:
        """Samples seen by one output frame (400 = 25 ms for the paper's stack)."""
        rf, jump = 1, 1
        for _, k, s in self.conv_layers:
            rf += (k - 1) * jump
            jump *= s
        return rf


@dataclass(frozen=True)
class TransformerConfig:
    """The context network g: masked latents -> contextualized representations C."""

    dim: int = 768  # fs: encoder_embed_dim, hf: hidden_size
    layers: int = 12  # fs: encoder_layers, hf: num_hidden_layers
    heads: int = 12  # fs: encoder_attention_heads, hf: num_attention_heads
    ffn_dim: int = 3072  # fs: encoder_ffn_embed_dim, hf: intermediate_size
    # False: post-LN blocks, LayerNorm after the positional embedding (BASE, LARGE).
    # True: pre-LN blocks, LayerNorm after the last block (LARGE-LV60K).
    layer_norm_first: bool = False  # fs: layer_norm_first, hf: do_stable_layer_norm
    layer_norm_eps: float = 1e-5  # hf: layer_norm_eps
    pos_conv_kernel: int = 128  # fs: conv_pos, hf: num_conv_pos_embeddings
    pos_conv_groups: int = 16  # fs: conv_pos_groups, hf: num_conv_pos_embedding_groups
    pos_conv_weight_norm: bool = True  # both use weight norm over the kernel dim (dim=2)
    dropout: float = 0.1  # fs: dropout, hf: hidden_dropout (block outputs)
    attention_dropout: float = 0.1  # fs: attention_dropout, hf: attention_dropout
    activation_dropout: float = 0.0  # fs: activation_dropout, hf: activation_dropout
    # Dropout on the encoder input, after the positional embedding.
    # fs reuses `dropout` here; hf has a separate `hidden_dropout` (same value in practice).
    encoder_input_dropout: float = 0.1
    layerdrop: float = 0.05  # fs: encoder_layerdrop, hf: layerdrop


@dataclass(frozen=True)
class QuantizerConfig:
    """Gumbel-softmax product quantizer Z -> Q (paper sec. 2, eq. 1)."""

    groups: int = 2  # G; fs: latent_groups, hf: num_codevector_groups
    entries: int = 320  # V; fs: latent_vars, hf: num_codevectors_per_group
    # Concatenated codevector size (each group contributes codevector_dim // groups).
    codevector_dim: int = 256  # fs: latent_dim (0 -> final_dim), hf: codevector_dim
    # Temperature tau = max(start * decay**update, end) (paper sec. 4.2).
    temperature_start: float = 2.0  # fs: latent_temp[0]
    temperature_end: float = 0.5  # fs: latent_temp[1]; 0.1 for LARGE models
    temperature_decay: float = 0.999995  # fs: latent_temp[2]

    @property
    def num_codevectors(self) -> int:
        return self.groups * self.entries

    def temperature(self, update: int) -> float:
        return max(self.temperature_start * self.temperature_decay**update, self.temperature_end)


@dataclass(frozen=True)
class MaskingConfig:
    """Span masking of time steps and of channels (fairseq's compute_mask_indices).

    ``time_prob`` follows fairseq: the expected number of spans is
    ``time_prob * T / time_length``. The paper states the same thing as a start probability
    p = 0.065 per step (0.065 * 10 = 0.65), which with overlaps masks about 49% of steps.
    """

    time_prob: float = 0.65  # fs: mask_prob, hf: mask_time_prob
    time_length: int = 10  # fs: mask_length, hf: mask_time_length
    time_min_masks: int = 2  # fs: hf: mask_time_min_masks (fs sets min_masks=2 in training)
    time_no_overlap: bool = False  # fs: no_mask_overlap
    time_min_space: int = 1  # fs: mask_min_space (only with no_overlap)
    # fairseq trims every utterance's mask to the batch minimum so that each has the same
    # number of masked steps (require_same_masks=True).
    require_same_masks: bool = True  # fs: require_same_masks
    channel_prob: float = 0.0  # fs: mask_channel_prob, hf: mask_feature_prob
    channel_length: int = 10  # fs: mask_channel_length, hf: mask_feature_length
    channel_min_masks: int = 0  # hf: mask_feature_min_masks
    channel_no_overlap: bool = False  # fs: no_mask_channel_overlap
    channel_min_space: int = 1  # fs: mask_channel_min_space


@dataclass(frozen=True)
class PretrainingConfig:
    """The self-supervised objective (paper sec. 3.2) and fairseq's wav2vec criterion."""

    num_negatives: int = 100  # K; fs: num_negatives, hf: num_negatives
    logit_temp: float = 0.1  # kappa; fs: logit_temp, hf: contrastive_logits_temperature
    diversity_weight: float = 0.1  # alpha; fs: loss_weights[0], hf: diversity_loss_weight
    # L2 penalty on the encoder output; not in the paper's text, in fairseq's BASE recipe
    # (loss_weights[1] = 10; 0 for LARGE-LV60K). Like the diversity term it is scaled by the
    # number of masked steps.
    feature_penalty_weight: float = 10.0  # fs: loss_weights[1]
    final_dim: int = 256  # fs: final_dim, hf: proj_codevector_dim
    dropout_features: float = 0.1  # fs: dropout_features, hf: feat_quantizer_dropout


@dataclass(frozen=True)
class Wav2Vec2Config:
    """The whole model. ``quantizer``/``pretraining`` are None for a fine-tuned-only model,
    ``vocab_size`` is None for a model without a CTC head."""

    feature_encoder: FeatureEncoderConfig = field(default_factory=FeatureEncoderConfig)
    transformer: TransformerConfig = field(default_factory=TransformerConfig)
    quantizer: QuantizerConfig | None = field(default_factory=QuantizerConfig)
    pretraining: PretrainingConfig | None = field(default_factory=PretrainingConfig)
    masking: MaskingConfig = field(default_factory=MaskingConfig)
    # Linear projection of the 512-d latents to the transformer width. fairseq omits it when
    # the widths match; transformers always has it.
    feature_projection: bool = True  # fs: post_extract_proj is not None
    dropout_input: float = 0.1  # fs: dropout_input, hf: feat_proj_dropout
    # Zero-mean unit-variance waveform per utterance (LARGE-LV60K); fs task.normalize,
    # hf feature extractor do_normalize.
    normalize_waveform: bool = False
    sample_rate: int = SAMPLE_RATE
    vocab_size: int | None = None  # CTC output units; hf: vocab_size
    final_dropout: float = 0.0  # dropout before the CTC head; hf: final_dropout

    # -- derived --------------------------------------------------------------------------
    @property
    def frame_rate(self) -> float:
        """Output frames per second (50 for the paper's stack)."""
        return self.sample_rate / self.feature_encoder.stride

    def with_overrides(self, **changes: Any) -> Wav2Vec2Config:
        """Return a copy with dotted keys replaced, e.g. ``transformer.layers=6``."""
        cfg = self.to_dict()
        for key, value in changes.items():
            try:
                set_dotted(cfg, key, value)
            except KeyError:
                raise Wav2Vec2Error(f"unknown config key {key!r}") from None
        return Wav2Vec2Config.from_dict(cfg)

    # -- serialization --------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Wav2Vec2Config:
        return dataclass_from_dict(cls, data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: str) -> Wav2Vec2Config:
        return cls.from_dict(json.loads(text))

    def save(self, path: str | Path) -> None:
        write_text_atomic(path, self.to_json() + "\n")

    @classmethod
    def load(cls, path: str | Path) -> Wav2Vec2Config:
        try:
            return cls.from_json(Path(path).read_text())
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise Wav2Vec2Error(f"not a valid wav2vec2 config ({exc})", path) from None


# -- presets -------------------------------------------------------------------------------

# BASE (paper Table 1 / fairseq wav2vec2_base_librispeech.yaml): 95M parameters. The
# feature encoder's gradients are scaled by 0.1 (paper sec. 4.2; the yaml's
# feature_grad_mult: 0.1), not by the 1.0 of fairseq's dataclass default.
BASE = Wav2Vec2Config(feature_encoder=FeatureEncoderConfig(grad_scale=0.1))

# LARGE trained on LS-960: group-norm encoder and post-LN like BASE, but 24 x 1024 blocks,
# final_dim 768, LayerDrop 0.2 (paper sec. 4.2) and temperature floor 0.1.
LARGE = Wav2Vec2Config(
    feature_encoder=FeatureEncoderConfig(grad_scale=0.1),
    transformer=TransformerConfig(dim=1024, layers=24, heads=16, ffn_dim=4096, layerdrop=0.2),
    quantizer=QuantizerConfig(codevector_dim=768, temperature_end=0.1),
    pretraining=PretrainingConfig(final_dim=768),
)

# LARGE-LV60K (fairseq wav2vec2_large_librivox.yaml): layer-norm encoder with conv bias,
# pre-LN blocks, normalized waveform, no dropout, no LayerDrop, no feature penalty.
LARGE_LV60K = Wav2Vec2Config(
    feature_encoder=FeatureEncoderConfig(norm="layer", conv_bias=True, grad_scale=1.0),
    transformer=TransformerConfig(
        dim=1024,
        layers=24,
        heads=16,
        ffn_dim=4096,
        layer_norm_first=True,
        dropout=0.0,
        attention_dropout=0.0,
        encoder_input_dropout=0.0,
        layerdrop=0.0,
    ),
    quantizer=QuantizerConfig(codevector_dim=768, temperature_end=0.1),
    pretraining=PretrainingConfig(final_dim=768, feature_penalty_weight=0.0, dropout_features=0.0),
    dropout_input=0.0,
    normalize_waveform=True,
)

# SMALL: a CPU-sized model for demos and tests (about 4M parameters). The conv stack keeps
# the paper's kernels and strides (20 ms frames, 25 ms receptive field) with fewer channels.
SMALL = Wav2Vec2Config(
    feature_encoder=FeatureEncoderConfig(
        conv_layers=((128, 10, 5),) + ((128, 3, 2),) * 4 + ((128, 2, 2),) * 2, grad_scale=0.1
    ),
    transformer=TransformerConfig(
        dim=256, layers=4, heads=4, ffn_dim=1024, pos_conv_kernel=32, pos_conv_groups=8
    ),
    # Ours, not the paper's G=2 x V=320: two codebooks of V=16 entries. With a CPU's few
    # hundred masked steps per update, finer codebooks are close to a random hash of each
    # frame (neighbouring frames rarely share a code), the context cannot predict them and
    # training sits at loss ln(K+1) with the context collapsed to a constant. With V=16 the
    # targets are coarse enough to be predictable and training leaves that plateau within
    # a few hundred updates (V=128: never in 4000; V=32: after ~350; docs/pretraining.md).
    # A CPU run lasts thousands of updates, not 400k: anneal the temperature 2 -> 0.5 over
    # about 2000 updates (0.9993**2000 = 0.25) instead of fairseq's 0.999995 per update.
    quantizer=QuantizerConfig(entries=16, codevector_dim=128, temperature_decay=0.9993),
    # K=20 distractors: a 3 s crop has only ~75 masked steps. No feature penalty, as in
    # fairseq's LARGE-LV60K recipe (loss_weights [0.1, 0]); the runs that left the plateau
    # (docs/pretraining.md) were all made without it.
    pretraining=PretrainingConfig(final_dim=128, num_negatives=20, feature_penalty_weight=0.0),
)

PRESETS: dict[str, Wav2Vec2Config] = {
    "small": SMALL,
    "base": BASE,
    "large": LARGE,
    "large_lv60k": LARGE_LV60K,
}


def preset(name: str) -> Wav2Vec2Config:
    try:
        return PRESETS[name.lower()]
    except KeyError:
        raise Wav2Vec2Error(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}") from None


__all__ = [
    "BASE",
    "LARGE",
    "LARGE_LV60K",
    "PRESETS",
    "SMALL",
    "FeatureEncoderConfig",
    "MaskingConfig",
    "PretrainingConfig",
    "QuantizerConfig",
    "TransformerConfig",
    "Wav2Vec2Config",
    "preset",
    "replace",
]

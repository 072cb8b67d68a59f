"""Build a CTC model from a pretrained checkpoint for fine-tuning."""

from __future__ import annotations

from torch import nn

from wav2vec2.config import Wav2Vec2Config
from wav2vec2.errors import Wav2Vec2Error
from wav2vec2.interop.loading import LoadedCheckpoint
from wav2vec2.models.wav2vec2 import Wav2Vec2Model
from wav2vec2.training.config import RunConfig
from wav2vec2.training.finetune_recipes import (
    FinetuneRecipe,
    finetune_model_config,
    finetune_train_config,
)
from wav2vec2.vocab import Vocabulary

# Pretraining-only parameters, dropped when fine-tuning.
PRETRAINING_ONLY = ("quantizer.", "project_q.", "final_proj.")


def finetune_run_config(pretrained: Wav2Vec2Config, recipe: FinetuneRecipe, vocab_size: int):
    train = finetune_train_config(recipe)
    train = type(train)(**{**train.__dict__, "freeze_updates": recipe.freeze_updates})
    return RunConfig("finetune", finetune_model_config(pretrained, recipe, vocab_size), train)


def build_finetune_model(
    cfg: Wav2Vec2Config, init: LoadedCheckpoint, vocab: Vocabulary
) -> Wav2Vec2Model:
    """Pretrained weights + a fresh CTC head (xavier-uniform, zero bias, as fairseq). A head
    from ``init`` is kept only when it was trained for the same vocabulary."""
    model = Wav2Vec2Model(cfg)
    keep_head = init.vocab == vocab and init.config.vocab_size == len(vocab)
    state = {
        k: v
        for k, v in init.state_dict.items()
        if not k.startswith(PRETRAINING_ONLY) and (keep_head or not k.startswith("ctc_head."))
    }
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith("ctc_head.")]
    if missing or unexpected:
        raise Wav2Vec2Error(
            f"pretrained weights do not fit: missing {missing[:4]}, unexpected {unexpected[:4]}"
        )
    if not keep_head:
        nn.init.xavier_uniform_(model.ctc_head.weight)
        nn.init.zeros_(model.ctc_head.bias)
    # The feature encoder is never fine-tuned (fairseq feature_grad_mult=0).
    for p in model.feature_encoder.parameters():
        p.requires_grad_(False)
    model.vocab = vocab
    return model

"""Build a CTC model from a pretrained checkpoint for fine-tuning."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from wav2vec2.checkpoint.model_dir import LoadedCheckpoint
from wav2vec2.config import Wav2Vec2Config
from wav2vec2.errors import Wav2Vec2Error
from wav2vec2.models.wav2vec2 import Wav2Vec2Model
from wav2vec2.training import runner
from wav2vec2.training.config import RunConfig
from wav2vec2.training.finetune_recipes import (
    FinetuneRecipe,
    finetune_model_config,
    finetune_train_config,
)
from wav2vec2.training.tasks import CTCTask
from wav2vec2.training.trainer import FitResult
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
    return model


def default_subsets(data: Path, preset: str) -> dict[str, str]:
    """train_<preset>.tsv (the corpus's nested subsets) or train.tsv; valid.tsv or dev.tsv."""
    train = f"train_{preset}" if (data / f"train_{preset}.tsv").is_file() else "train"
    valid = "valid" if (data / "valid.tsv").is_file() else "dev"
    return {"data.train_subset": train, "data.valid_subset": valid}


def run_finetuning(
    data: Path,
    init: LoadedCheckpoint,
    out: Path,
    cfg: RunConfig,
    vocab: Vocabulary,
    labels: str = "ltr",
) -> FitResult:
    """Fine-tune (or resume) ``init`` for CTC on ``data`` into ``out``; rank 0 reports."""
    if cfg.model.vocab_size != len(vocab):
        raise Wav2Vec2Error(f"model.vocab_size must be {len(vocab)} for this dictionary")
    d = cfg.train.data
    with runner.session(cfg) as (env, device):
        runner.prepare_run_dir(out, cfg, env)
        sources = [
            runner.data_source(
                data / f"{subset}.tsv",
                cfg,
                env,
                train=is_train,
                labels=data / f"{subset}.{labels}",
                vocab=vocab,
            )  # fmt: skip
            for subset, is_train in ((d.train_subset, True), (d.valid_subset, False))
        ]
        task = CTCTask(vocab, cfg.train.freeze_updates, warn_after=cfg.train.valid_interval)
        result = runner.train_run(
            out, cfg, task, lambda: build_finetune_model(cfg.model, init, vocab), *sources,
            env, device, vocab,
        )  # fmt: skip
        if env.is_main:
            runner.report(out, result)
    return result

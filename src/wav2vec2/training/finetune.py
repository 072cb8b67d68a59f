"""Build a CTC model for fine-tuning: from a pretrained checkpoint, or randomly initialized
(the from-scratch baseline of the paper's Table 1, trained by the same loop)."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from wav2vec2.checkpoint.model_dir import LoadedCheckpoint
from wav2vec2.config import Wav2Vec2Config
from wav2vec2.errors import Wav2Vec2Error
from wav2vec2.models.wav2vec2 import Wav2Vec2Model
from wav2vec2.training import feature_cache, runner
from wav2vec2.training.config import RunConfig
from wav2vec2.training.tasks import CTCTask
from wav2vec2.training.trainer import FitResult
from wav2vec2.vocab import Vocabulary

# Pretraining-only parameters, dropped when fine-tuning.
PRETRAINING_ONLY = ("quantizer.", "project_q.", "final_proj.")


def build_finetune_model(
    cfg: Wav2Vec2Config, init: LoadedCheckpoint | None, vocab: Vocabulary
) -> Wav2Vec2Model:
    """Pretrained weights + a fresh CTC head (xavier-uniform, zero bias, as fairseq). A head
    from ``init`` is kept only when it was trained for the same vocabulary. ``init`` None:
    every weight is randomly initialized (training from scratch).

    The feature encoder trains only when ``cfg.feature_encoder.grad_scale`` is above 0: the
    fine-tuning recipes set 0 (fairseq's feature_grad_mult=0), a from-scratch run 1."""
    model = Wav2Vec2Model(cfg)
    if init is not None:
        _load_pretrained(model, init, vocab)
    if cfg.feature_encoder.grad_scale == 0:
        for p in model.feature_encoder.parameters():
            p.requires_grad_(False)
    return model


def _load_pretrained(model: Wav2Vec2Model, init: LoadedCheckpoint, vocab: Vocabulary) -> None:
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


def run_finetuning(
    data: Path, init: LoadedCheckpoint | None, out: Path, cfg: RunConfig
) -> FitResult:
    """Fine-tune (or resume) ``init`` for CTC on ``data`` into ``out``; rank 0 reports.
    ``init`` None trains ``cfg.model`` from a random initialization with the same loop. The
    labels are ``data``'s ``SUBSET.<labels>`` files and ``dict.<labels>.txt``, for the
    ``data.labels`` setting (e.g. ltr)."""
    d = cfg.train.data
    vocab = Vocabulary.for_labels(data, d.labels)
    if cfg.model.vocab_size != len(vocab):
        raise Wav2Vec2Error(f"model.vocab_size must be {len(vocab)} for this dictionary")
    with runner.session(cfg) as (env, device):
        runner.prepare_run_dir(out, cfg, env)
        sources = [
            runner.data_source(
                data / f"{subset}.tsv",
                cfg,
                env,
                train=is_train,
                labels=data / f"{subset}.{d.labels}",
                vocab=vocab,
            )  # fmt: skip
            for subset, is_train in ((d.train_subset, True), (d.valid_subset, False))
        ]
        cache = feature_cache.for_run(cfg)  # None where reusing the encoder's output is not exact
        task = CTCTask(
            vocab, cfg.train.freeze_updates, warn_after=cfg.train.valid_interval,
            feature_cache=cache,
        )  # fmt: skip
        result = runner.train_run(
            out, cfg, task, lambda: build_finetune_model(cfg.model, init, vocab), *sources,
            env, device, vocab,
        )  # fmt: skip
        if env.is_main:
            runner.report(out, result)
            if cache is not None:
                print(cache.summary())
    return result

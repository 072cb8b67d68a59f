"""Pretraining really learns on speech: the SMALL preset and its recipe, on a small built-in
corpus, leave the ln(K+1) plateau within a few hundred updates (docs/pretraining.md).

Chance for the contrastive task is 1/(K+1); a model that predicts nothing sits there with
its context collapsed to a constant. This test asserts the validation accuracy ends well
above chance and above where it started, with a healthy codebook.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from wav2vec2.config import SMALL
from wav2vec2.corpus.make import make_corpus, missing_packages
from wav2vec2.corpus.plan import CorpusConfig
from wav2vec2.corpus.sources import austen_folder
from wav2vec2.training.metrics import LOG_FILE, read_log
from wav2vec2.training.pretrain import run_pretraining
from wav2vec2.training.recipes import pretrain_run_config

UPDATES = 600


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if missing_packages() or austen_folder() is None:
        pytest.skip("corpus packages missing: run scripts/install-system-deps.sh")
    dest = tmp_path_factory.mktemp("speech") / "corpus"
    make_corpus(dest, CorpusConfig(hours=0.25, seed=5), workers=2, install=False, progress=False)
    return dest


def test_small_preset_leaves_the_plateau_on_speech(speech: Path, tmp_path: Path) -> None:
    cfg = pretrain_run_config(
        "small",
        {
            "data.train_subset": "pretrain",
            "data.valid_subset": "dev",
            "data.num_workers": 0,
            "max_updates": UPDATES,
            "valid_interval": 100,
            "save_interval": UPDATES,
        },
    )
    run_pretraining(speech, tmp_path / "run", cfg)
    valid = [r for r in read_log(tmp_path / "run" / LOG_FILE) if r.get("split") == "valid"]
    assert len(valid) == UPDATES // 100
    chance = 1 / (SMALL.pretraining.num_negatives + 1)
    first, last = valid[0], valid[-1]
    assert last["accuracy"] > 3 * chance, [round(r["accuracy"], 3) for r in valid]
    assert last["accuracy"] > first["accuracy"] + 0.05
    assert last["loss"] < first["loss"]
    # Healthy codebook: more than half of the G*V codes in use.
    assert last["code_perplexity"] > 0.5 * SMALL.quantizer.num_codevectors

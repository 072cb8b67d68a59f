"""The main job end to end at a tiny size, then again: the second run resumes every stage."""

import json
from pathlib import Path

import pytest

from wav2vec2.corpus.writer import ALPHABET
from wav2vec2.data.manifest import write_dictionary
from wav2vec2.demo import FULL, QUICK, DemoPlan, finetune_config, pretrain_config, run_demo
from wav2vec2.training.config import RunConfig

TINY = DemoPlan(
    hours=0.2, pretrain_updates=8, finetune_updates=8, freeze_updates=2, examples=2, vocabulary=1000
)


def test_demo_runs_end_to_end_then_resumes(tmp_path, capsys):
    out = tmp_path / "demo"
    first = run_demo(out, workers=2, plan=TINY)
    printed = capsys.readouterr().out
    for stage in range(1, 6):
        assert f"=== [{stage}/5]" in printed
    assert printed.count("REF:") == 2 and "Test WER" in printed
    # Eight updates cannot transcribe: a zero here would mean nothing was scored. The
    # returned rates are the ones the reports hold.
    assert first["greedy_cer"] > 0.0 and first["wer"] > 0.0
    greedy = json.loads((out / "eval" / "greedy" / "test_summary.json").read_text())
    assert greedy["metrics"]["cer"] == first["greedy_cer"]
    summary = json.loads((out / "eval" / "lm" / "test_summary.json").read_text())
    assert summary["decoding"]["lm"] and summary["metrics"]["wer"] == first["wer"]
    assert summary["decoding"]["beam"] == 500  # the paper's beam for tuning the 4-gram weights
    # The corpus, its LM and so the beam search's lexicon keep to the closed vocabulary.
    lexicon = (out / "lm" / "lexicon.txt").read_text().splitlines()
    assert 500 < len(lexicon) <= 1000
    spoken = {
        w
        for split in ("train_10m", "test")
        for w in (out / "corpus" / f"{split}.wrd").read_text().split()
    }
    assert spoken <= {line.split()[0] for line in lexicon}
    for plot_dir in (out / "pretrain" / "plots", out / "finetune" / "plots"):
        assert any(plot_dir.glob("*.png"))

    # Nothing is redone: the corpus audio, both trainings and the LM are kept as they are
    # (the corpus manifests are written again, with the same content).
    manifest = (out / "corpus" / "train_10m.tsv").read_text()
    kept = [
        next((out / "corpus" / "audio").rglob("*.flac")),
        out / "pretrain" / "checkpoints" / "update_00000008" / "model.safetensors",
        out / "finetune" / "checkpoints" / "update_00000008" / "model.safetensors",
        out / "lm" / "lm.bin",
    ]
    stamps = [p.stat().st_mtime_ns for p in kept]
    second = run_demo(out, workers=2, plan=TINY)
    assert [p.stat().st_mtime_ns for p in kept] == stamps
    assert (out / "corpus" / "train_10m.tsv").read_text() == manifest
    assert second["wer"] == first["wer"] and second["model"] == first["model"]


@pytest.mark.parametrize("name, plan", [("full", FULL), ("quick", QUICK)])
def test_demo_run_configs_are_pinned(name, plan, tmp_path):
    """Each stage's resolved run config is the one its run directory holds (run.json): a
    change refuses to resume an existing demo. Pinned as resolved before the recipes moved
    to one builder per run kind."""
    expected = json.loads((Path(__file__).parent / "demo_run_configs.json").read_text())[name]
    # The fine-tuning recipe now names its labels; before, run_finetuning assumed "ltr".
    expected["finetune"]["train"]["data"]["labels"] = "ltr"
    write_dictionary(tmp_path / "dict.ltr.txt", {s: 1 for s in ALPHABET})
    pretrain = pretrain_config(plan)
    assert pretrain == RunConfig.from_dict(expected["pretrain"])
    assert finetune_config(plan, pretrain.model, tmp_path) == RunConfig.from_dict(
        expected["finetune"]
    )

"""Stage 5 of the low-resource experiment: every grid run decoded on the test speakers.

Greedy, and lexicon beam search with the 4-gram LM whose two weights (lm_weight,
word_score) are picked on the full dev split only (``evaluation.tune_beam``: the model runs
once, only the decoding repeats), never on test. WER and CER on test carry 95 % bootstrap
intervals over utterances (``metrics.bootstrap_rates``). Each run's results go to
``finetune/<run>/eval/`` (per-utterance TSVs, summaries, ``results.json``); a run with a
``results.json`` is skipped.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, replace
from pathlib import Path

from wav2vec2.atomic import write_text_atomic
from wav2vec2.beam_search import BeamSearchConfig
from wav2vec2.evaluation import EvalResult, evaluate, tune_beam
from wav2vec2.inference import Wav2Vec2Inference
from wav2vec2.metrics import bootstrap_rates

RESULTS = "results.json"


def _scored(result: EvalResult, grid) -> dict:
    refs = [ref for _, ref, _ in result.pairs]
    hyps = [hyp for _, _, hyp in result.pairs]
    ci = bootstrap_rates(refs, hyps, grid.bootstrap_resamples, seed=grid.seed)
    return {**asdict(ci), "skipped": result.skipped, "summary": str(result.summary_path)}


def evaluate_run(record: dict, corpus: Path, lm_dir: Path, run_dir: Path, grid) -> dict:
    """Greedy and 4-gram results of one finished run (read back when already done)."""
    path = run_dir / "eval" / RESULTS
    if path.is_file():  # the model where it is now (a restored carry may have moved it)
        return {**json.loads(path.read_text()), "model": record["model"]}
    start = time.time()
    # beam search is one core per utterance: decode on every core (the same transcripts)
    engine = Wav2Vec2Inference.from_pretrained(record["model"], decode_workers=os.cpu_count() or 1)
    greedy = evaluate(engine, corpus, "test", run_dir / "eval" / "greedy", progress=False)
    base = BeamSearchConfig(beam=grid.tune_beam)
    best, points = tune_beam(engine, corpus, "dev", lm_dir, grid.lm_grid, base=base)
    decoder = engine.beam_decoder(lm_dir, replace(best, beam=grid.test_beam))
    lm = evaluate(engine, corpus, "test", run_dir / "eval" / "lm", False, decoder)
    results = {
        **record,
        "test": {"greedy": _scored(greedy, grid), "lm": _scored(lm, grid)},
        "lm_tuning": {
            "split": "dev",
            "beam": grid.tune_beam,
            "test_beam": grid.test_beam,
            "picked": {"lm_weight": best.lm_weight, "word_score": best.word_score},
            "dev_wer": [
                {"lm_weight": c.lm_weight, "word_score": c.word_score, "wer": w} for c, w in points
            ],
        },
        "eval_seconds": time.time() - start,
    }
    write_text_atomic(path, json.dumps(results, indent=2) + "\n")
    return results


def evaluate_and_print(record: dict, corpus: Path, lm_dir: Path, run_dir: Path, grid) -> dict:
    """:func:`evaluate_run`, then its two test WERs on one line."""
    r = evaluate_run(record, corpus, lm_dir, run_dir, grid)
    g, lm = r["test"]["greedy"], r["test"]["lm"]
    print(f"{run_dir.name}: test WER greedy {100 * g['wer']['value']:.1f}%, "
          f"4-gram {100 * lm['wer']['value']:.1f}%")  # fmt: skip
    return r

"""The low-resource experiment (issue 20): does pretraining make 10 minutes of labels enough?

    .venv/bin/python experiments/low_resource/run.py [--out experiments/low_resource/work]

Stages, each resumable (rerun the same command to continue where it stopped; a finished
stage is skipped):

1. corpus: 13 h of built-in TTS speech with an open vocabulary; labeled subsets of 10 min,
   1 h and 10 h (nested); dev and test of about 1.3 h each (300+ utterances) from speakers
   never heard in training;
2. lm: a word 4-gram on the corpus's LM text (sentences dev and test never read);
3. pretrain: the SMALL preset on the unlabeled split, for PLAN.pretrain_updates updates
   (about 4-6 hours of 2-core time), checkpointed every few minutes;
4. finetune: the grid {10 min, 1 h, 10 h} x {pretrained, from scratch, frozen pretrained
   model + linear CTC probe} (grid.py; settings in finetune/grid.json);
5. evaluate: each run, as soon as it has trained, on the test speakers, greedy and with the
   4-gram whose weights are tuned on dev, WER and CER with 95 % bootstrap intervals
   (scoring.py);
6. report: the table, results.json, the curves, the codeword-letter co-occurrence
   (codewords.py) and the best model (by dev WER) as a model directory (report.py).
"""

from __future__ import annotations

if __name__ == "__main__":  # before torch is imported, as the wav2vec2 command does
    from wav2vec2.allocator import reexec_with_tcmalloc

    reexec_with_tcmalloc()  # 3.2-3.5 against 1.8-2.5 updates/s before it (README, stage 3)

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from wav2vec2.atomic import write_text_atomic
from wav2vec2.corpus.make import make_corpus
from wav2vec2.corpus.plan import CorpusConfig
from wav2vec2.errors import Wav2Vec2Error
from wav2vec2.ngram import ensure_ngram
from wav2vec2.training.config import RunConfig
from wav2vec2.training.metrics import LOG_FILE, read_log, training_seconds
from wav2vec2.training.pretrain import run_pretraining
from wav2vec2.training.recipes import pretrain_run_config

HERE = Path(__file__).resolve().parent
CARRY = HERE / "carry"  # committed: the run's state for the next machine (carry.py)
sys.path.insert(0, str(HERE))  # the stage modules beside this file, also when imported

from carry import check_corpus, restore_carry, save_carry  # noqa: E402
from grid import GridPlan, check_grid, finished, train_grid, write_finished  # noqa: E402
from report import write_all  # noqa: E402
from scoring import evaluate_and_print  # noqa: E402


@dataclass(frozen=True)
class Plan:
    """The experiment's sizes (saved as plan.json beside its results)."""

    hours: float = 13.0  # corpus size: 10 h labeled training + pretraining pool, dev, test
    eval_hours: float = 1.3  # dev and test each: about 350 utterances of 13 s
    preset: str = "small"
    # SMALL runs 4.4-5 updates/s alone on 2 cores (docs/pretraining.md), about half that
    # while the machine is shared; this host ran it at 2.1 updates/s on 2026-12-03: 45k
    # updates is about 6 hours, the budget.
    pretrain_updates: int = 45_000
    pretrain_warmup: int = 2_000
    seed: int = 0


def corpus_config(plan: Plan) -> CorpusConfig:
    return CorpusConfig(
        hours=plan.hours,
        seed=plan.seed,
        eval_fraction=plan.eval_hours / plan.hours,
        eval_max_hours=plan.eval_hours,
    )


def pretrain_config(plan: Plan) -> RunConfig:
    return pretrain_run_config(
        plan.preset,
        {
            "max_updates": plan.pretrain_updates,
            "schedule.warmup_updates": plan.pretrain_warmup,
            "valid_interval": 2_500,
            "save_interval": 500,
            "data.train_subset": "pretrain",
            "data.valid_subset": "dev",
            "data.num_workers": 1,
            "log_interval": 100,
        },
    )


def _stage(n: int, title: str) -> float:
    print(f"\n=== [{n}] {title} ===", flush=True)
    return time.time()


def _record_time(out: Path, stage: str, seconds: float, add: bool = True) -> None:
    """Wall-clock seconds of each stage: the corpus and the LM add up their runs (a killed
    run adds nothing; both take minutes); the training stages are set to what their logs
    hold (``training_seconds``), which a kill does not lose."""
    path = out / "wall_clock.json"
    times = json.loads(path.read_text()) if path.is_file() else {}
    times[stage] = (times.get(stage, 0.0) if add else 0.0) + seconds
    write_text_atomic(path, json.dumps(times, indent=2) + "\n")


def _logged_seconds(run_dirs) -> float:
    logs = [d / LOG_FILE for d in run_dirs]
    return sum(training_seconds(read_log(log)) for log in logs if log.is_file())


def run(
    out: Path,
    plan: Plan,
    grid: GridPlan | None = None,
    report: Path | None = None,
    carry: Path | None = None,
) -> None:
    """Run (or resume) every stage into ``out``; the report goes to ``report`` (default
    ``out/report``). An empty ``out`` first takes what ``carry`` holds (carry.py)."""
    grid = grid or GridPlan()
    report = report or out / "report"
    out.mkdir(parents=True, exist_ok=True)
    if carry is not None and (restored := restore_carry(carry, out)):
        print(f"restored {len(restored)} files from {carry} (rebuilding the corpus and LM)")
    saved = out / "plan.json"
    if saved.is_file() and json.loads(saved.read_text()) != asdict(plan):
        sys.exit(f"{saved}: made with other settings; use another --out")
    write_text_atomic(saved, json.dumps(asdict(plan), indent=2) + "\n")
    corpus, lm_dir, pre_dir = out / "corpus", out / "lm", out / "pretrain"

    t = _stage(1, f"corpus: {plan.hours:g} h, open vocabulary -> {corpus}")
    make_corpus(corpus, corpus_config(plan), workers=2)
    _record_time(out, "corpus", time.time() - t)
    check_corpus(out)

    t = _stage(2, f"4-gram LM on the training text -> {lm_dir}")
    info = ensure_ngram(corpus / "lm.txt", lm_dir, order=4)
    print(f"{info.sentences} sentences, {info.words} words, lexicon {info.vocabulary}")
    _record_time(out, "lm", time.time() - t)

    _stage(3, f"pretrain {plan.preset.upper()} for {plan.pretrain_updates} updates")
    _record_time(out, "pretrain", _logged_seconds([pre_dir]), add=False)  # earlier sessions
    done = finished(pre_dir)  # once done, the stage needs only its best model (carry.py)
    if done is None:
        result = run_pretraining(corpus, pre_dir, pretrain_config(plan))
        _record_time(out, "pretrain", _logged_seconds([pre_dir]), add=False)
        best = result.best_checkpoint or result.last_checkpoint
        done = write_finished(pre_dir, {"run": "pretrain", "updates": result.update}, best)
    pretrained = Path(done["model"])
    print(f"pretrained: {pretrained} (update {done['updates']})")

    ft_dir = out / "finetune"
    check_grid(ft_dir / "grid.json", grid)
    _stage(4, f"fine-tuning grid {grid.labels} x pretrained / scratch / probe -> {ft_dir}")
    print("[5] each run is evaluated as soon as it has trained: on the test speakers, greedy "
          "and with the 4-gram tuned on dev")  # fmt: skip
    results = {}
    for name, record in train_grid(corpus, ft_dir, grid, pretrained, plan.preset):
        results[name] = evaluate_and_print(record, corpus, lm_dir, ft_dir / name, grid)
        _record_time(out, "finetune", _logged_seconds(ft_dir / r for r in results), add=False)
        seconds = sum(r["eval_seconds"] for r in results.values())
        _record_time(out, "evaluate", seconds, add=False)

    t = _stage(6, f"report -> {report}")
    path = write_all(out, report, grid, results, pretrained)
    _record_time(out, "report", time.time() - t)
    print(f"report: {path}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=HERE / "work")
    p.add_argument(
        "--report",
        type=Path,
        default=None,
        help="where the table, plots and results.json go (default: experiments/low_resource/"
        "results for the default --out, else OUT/report)",
    )
    p.add_argument(
        "--save-carry",
        action="store_true",
        help="copy what a fresh machine could not rebuild into experiments/low_resource/carry "
        "(to commit at the end of a session; pause the run first) and exit",
    )
    args = p.parse_args()
    try:
        _main(args)
    except Wav2Vec2Error as exc:  # one line naming the file, as the wav2vec2 command does
        sys.exit(f"error: {exc}")


def _main(args: argparse.Namespace) -> None:
    out = args.out.resolve()
    default = out == (HERE / "work").resolve()
    if args.save_carry:
        carried = save_carry(out, CARRY)
        print(f"carried {len(carried)} paths into {CARRY}:", *map(str, carried), sep="\n  ")
        return
    report = args.report or (HERE / "results" if default else None)
    run(out, Plan(), report=report.resolve() if report else None, carry=CARRY if default else None)


if __name__ == "__main__":
    main()

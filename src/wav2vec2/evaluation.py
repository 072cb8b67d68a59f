"""Evaluate a CTC model on a labeled split: WER and CER with jiwer, a per-utterance TSV and a
summary JSON that records the model, the data and the decoding settings (greedy, or beam
search with an n-gram LM, whose weights ``tune_beam`` picks on dev and may record in the LM
directory).

Both take an inference engine, so a caller that evaluates one model several ways (the demo:
greedy, tuning on dev, beam search on test) loads it once."""

from __future__ import annotations

import csv
import io
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from wav2vec2.atomic import atomic_files, check_dir_dest, check_file_dest, write_text_atomic
from wav2vec2.beam_search import BeamSearchConfig
from wav2vec2.data.manifest import read_labels, read_manifest, words_from_letters
from wav2vec2.decoding import Decoder
from wav2vec2.errors import Wav2Vec2Error
from wav2vec2.inference import Transcript, Wav2Vec2Inference
from wav2vec2.metrics import error_counts, rates
from wav2vec2.tuned_weights import GridPoint, TunedWeights, model_id, tuned_path, write_tuned


@dataclass(frozen=True)
class EvalResult:
    wer: float
    cer: float
    utterances: int
    summary_path: Path
    utterances_path: Path
    pairs: list[tuple[str, str, str]]  # (path, reference, hypothesis)
    skipped: int = 0  # utterances left out: unreadable, corrupt or too short audio


def references(data: Path, split: str, count: int) -> list[str]:
    """Word transcripts from SPLIT.wrd, or from SPLIT.ltr (letters with | boundaries)."""
    wrd, ltr = data / f"{split}.wrd", data / f"{split}.ltr"
    if wrd.is_file():
        return [" ".join(line.split()) for line in read_labels(wrd, count)]
    if ltr.is_file():
        return [words_from_letters(line) for line in read_labels(ltr, count)]
    raise Wav2Vec2Error(f"no {split}.wrd or {split}.ltr transcripts", data)


def labeled_split(data: Path, split: str) -> tuple[list[str], list[str]]:
    """(audio paths, word transcripts) of SPLIT.tsv with SPLIT.wrd or SPLIT.ltr."""
    manifest = data / f"{split}.tsv"
    if not manifest.is_file():
        raise Wav2Vec2Error("manifest not found", manifest)
    root, entries = read_manifest(manifest)
    if not entries:  # a WER over nothing would read as a perfect 0%
        raise Wav2Vec2Error("the manifest lists no utterances", manifest)
    refs = references(data, split, len(entries))
    return [str(Path(root) / rel) for rel, _ in entries], refs


def tune_beam(
    engine: Wav2Vec2Inference,
    data: str | Path,
    split: str,
    lm: str | Path,
    grid: Sequence[tuple[float, float]],
    base: BeamSearchConfig | None = None,
    record: bool = False,
) -> tuple[BeamSearchConfig, list[tuple[BeamSearchConfig, float]]]:
    """The (lm_weight, word_score) of GRID with the lowest WER on SPLIT (dev, as fairseq's
    users tune them), and every point's WER. The model runs once; only decoding repeats.
    ``base``: the other search settings (beam, lexicon-free). ``record``: also write the
    result to LM/tuned.json (atomically, over an earlier one), where ``evaluate`` and
    ``transcribe`` find it (``wav2vec2 lm tune``)."""
    if not grid:
        raise Wav2Vec2Error("the grid has no points")
    paths, refs = labeled_split(Path(data), split)
    base = base or BeamSearchConfig()
    # the LM is loaded once, and before the model runs: a bad LM fails at once
    decoder = engine.beam_decoder(lm, base)
    if record:
        check_file_dest(tuned_path(lm))
    emissions = engine.emissions(paths)
    refs = _scored(paths, refs, emissions)
    scores = []
    for lm_weight, word_score in grid:
        config = replace(base, lm_weight=lm_weight, word_score=word_score)
        decoded = engine.decode_emissions(emissions, decoder.with_config(config))
        hyps = [t.text for t in decoded if t.ok]
        scores.append((config, rates(error_counts(refs, hyps))["wer"]))
    best, wer = min(scores, key=lambda s: s[1])
    if record:
        write_tuned(lm, TunedWeights(
            best.lm_weight, best.word_score, base.search, model_id(engine.source),
            str(Path(data).resolve()), split, wer, base.beam, base.beam_threshold,
            tuple(GridPoint(c.lm_weight, c.word_score, w) for c, w in scores),
        ))  # fmt: skip
    return best, scores


def _scored(
    paths: Sequence[str], refs: Sequence[str], results: Sequence, limit: int = 10
) -> list[str]:
    """The references of the inputs that ran. Those that could not be used (unreadable or
    corrupt audio, shorter than the receptive field) are left out of the scores and
    reported on stderr, the first LIMIT by name; none usable at all is an error."""
    failed = [r for r in results if r.error is not None]
    for r in failed[:limit]:
        print(f"wav2vec2: skipped: {r.error}", file=sys.stderr)
    if len(failed) > limit:
        print(f"wav2vec2: skipped {len(failed) - limit} more", file=sys.stderr)
    kept = [ref for ref, r in zip(refs, results) if r.error is None]
    if not kept:
        raise Wav2Vec2Error(f"none of the {len(paths)} utterances could be read")
    return kept


def evaluate(
    engine: Wav2Vec2Inference,
    data: str | Path,
    split: str,
    out_dir: str | Path,
    progress: bool = True,
    decoder: Decoder | None = None,
) -> EvalResult:
    """WER/CER on SPLIT with the engine's decoder, or ``decoder`` (e.g. beam search with an
    LM, :meth:`Wav2Vec2Inference.beam_decoder`); writes the reports, both or neither. An
    utterance whose audio cannot be used is skipped, reported, and counted in the summary."""
    data, out_dir = Path(data), Path(out_dir)
    utterances_path = out_dir / f"{split}_utterances.tsv"
    summary_path = out_dir / f"{split}_summary.json"
    check_dir_dest(out_dir)  # before the model runs, not after
    for path in (utterances_path, summary_path):
        check_file_dest(path)
    paths, refs = labeled_split(data, split)
    decoder = decoder or engine.decoder
    start = time.time()
    results = engine.transcribe(paths, progress=progress, decoder=decoder)
    wall = time.time() - start
    failed = [t for t in results if not t.ok]
    refs = _scored(paths, refs, results)
    transcripts: list[Transcript] = [t for t in results if t.ok]
    paths = [t.source for t in transcripts]
    hyps = [t.text for t in transcripts]
    counts = error_counts(refs, hyps)
    metrics = rates(counts)
    audio_seconds = sum(t.duration for t in transcripts)

    rows = io.StringIO()
    writer = csv.writer(rows, delimiter="\t", lineterminator="\n")
    writer.writerow(["path", "duration", "wer", "reference", "hypothesis"])
    for path, ref, t in zip(paths, refs, transcripts):
        utt = rates(error_counts([ref], [t.text]))
        writer.writerow([path, f"{t.duration:.2f}", f"{utt['wer']:.4f}", ref, t.text])
    summary = {
        "model": engine.source,
        "backend": engine.backend,
        "precision": engine.precision,
        "data": str(data.resolve()),
        "split": split,
        "decoding": decoder.describe(),
        "metrics": {**metrics, **counts},
        "utterances": len(paths),
        "skipped": len(failed),
        "failed": [{"path": t.source, "error": t.error} for t in failed],
        "audio_hours": audio_seconds / 3600,
        "wall_seconds": wall,
        "real_time_factor": wall / max(audio_seconds, 1e-9),
    }
    with atomic_files(out_dir) as stage:
        write_text_atomic(stage / utterances_path.name, rows.getvalue())
        write_text_atomic(stage / summary_path.name, json.dumps(summary, indent=2) + "\n")
    return EvalResult(
        metrics["wer"], metrics["cer"], len(paths), summary_path, utterances_path,
        list(zip(paths, refs, hyps)), len(failed),
    )  # fmt: skip

"""``wav2vec2 corpus make``: plan, synthesize in parallel, write manifests.

The run is resumable. Each utterance's FLAC file is written to a temporary name and renamed
(:func:`wav2vec2.atomic.atomic_write`), so a file that exists is complete; a re-run with the
same settings re-plans (deterministic), skips the files that exist, and writes the manifests
only once every utterance is done.
``corpus.json`` records the settings and a digest of the plan, so a re-run with other
settings into the same folder is refused instead of mixing two corpora.
"""

from __future__ import annotations

import functools
import io
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import soundfile as sf
from tqdm import tqdm

from wav2vec2.atomic import TMP_PREFIX, atomic_write, check_dir_dest, ensure_dir, write_text_atomic
from wav2vec2.audio import SAMPLE_RATE
from wav2vec2.corpus import augment as aug
from wav2vec2.corpus.plan import (
    CorpusConfig,
    Utterance,
    lm_sentences,
    plan_corpus,
    plan_digest,
    sentence_blocks,
)
from wav2vec2.corpus.sources import all_passages, austen_folder, missing_text_packages
from wav2vec2.corpus.synth import Request, SynthesisError, synthesize, to_pcm16
from wav2vec2.corpus.voices import Voice, missing_engine_packages
from wav2vec2.corpus.writer import Made, write_outputs
from wav2vec2.errors import Wav2Vec2Error

JOB_UTTERANCES = 8  # utterances per worker task (one festival process per task)
TMP_MARK = ".part-"  # temporary audio names of versions before atomic_write; swept too


def missing_packages() -> list[str]:
    """Debian packages the corpus needs that are not installed."""
    missing = missing_engine_packages() + missing_text_packages()
    return list(dict.fromkeys(missing))


def ensure_system_packages(install: bool = True, log: Callable[[str], None] = print) -> None:
    """Install missing Debian packages when possible, else raise with the exact command.

    Installing needs root and apt-get; the Jane Austen text needs only ``apt-get download``.
    """
    missing = missing_packages()
    if missing and install and shutil.which("apt-get") and os.geteuid() == 0:
        log(f"installing Debian packages: {' '.join(missing)}")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True)
        got = subprocess.run(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
            env=env,
            capture_output=True,
            text=True,
        )
        if got.returncode != 0:
            log(got.stderr.strip()[-500:])
        missing = missing_packages()
    if missing:
        raise Wav2Vec2Error(
            f"missing Debian packages for the corpus; install them with: "
            f"sudo apt-get install -y {' '.join(missing)} (or run scripts/install-system-deps.sh)"
        )
    if austen_folder() is None:
        raise Wav2Vec2Error(
            "cannot read Jane Austen's novels: run scripts/install-system-deps.sh, or "
            "`apt-get download r-cran-janeaustenr` and unpack it with `dpkg-deb -x` into "
            "~/.cache/wav2vec2/janeaustenr"
        )


@functools.lru_cache(maxsize=2)
def _sentence_blocks(
    min_words: int, max_words: int, sources: tuple[str, ...], vocabulary: int
) -> list:
    """The normalized text of the chosen sources, once per process (it takes seconds)."""
    passages = all_passages()
    chosen = {name: passages[name] for name in sources}
    return sentence_blocks(chosen, min_words, max_words, vocabulary)


@dataclass(frozen=True)
class Job:
    """Utterances of one voice that one worker makes in one go."""

    dest: str
    voice: Voice
    utterances: tuple[Utterance, ...]


def _write_flac(path: Path, audio) -> None:
    """Write 16-bit FLAC through a temporary name, so the final name means complete. It is
    encoded in memory (seconds of audio) and written as bytes: libsndfile reports a full
    disk only as "System error", a plain write as the ENOSPC that atomic_write names."""
    flac = io.BytesIO()
    sf.write(flac, audio, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
    atomic_write(path, lambda tmp: tmp.write_bytes(flac.getvalue()))


def run_job(job: Job) -> list[tuple[str, int, str]]:
    """Make a job's utterances: ``(uid, num_samples, error)``, error empty on success."""
    requests = [Request(u.spoken, u.rate, u.pitch) for u in job.utterances]
    try:
        audios = synthesize(job.voice, requests)
    except SynthesisError:
        if len(requests) == 1:
            raise
        # One bad utterance fails a festival batch: retry one at a time to isolate it.
        return [r for u in job.utterances for r in run_job(Job(job.dest, job.voice, (u,)))]
    results = []
    for u, audio in zip(job.utterances, audios):
        try:
            pcm = to_pcm16(aug.apply(audio, u.augment))
        except SynthesisError as exc:
            results.append((u.uid, 0, str(exc)))
            continue
        _write_flac(Path(job.dest) / u.relpath, pcm)
        results.append((u.uid, len(pcm), ""))
    return results


def _run_job_safe(job: Job) -> list[tuple[str, int, str]]:
    try:
        return run_job(job)
    except SynthesisError as exc:
        return [(u.uid, 0, str(exc)) for u in job.utterances]


def _jobs(dest: Path, pending: list[Utterance]) -> list[Job]:
    """Group pending utterances by voice into small jobs, interleaved across voices so the
    progress rate is steady from the start."""
    by_voice: dict[str, list[Utterance]] = {}
    for u in pending:
        by_voice.setdefault(u.voice.id, []).append(u)
    chunks = []
    for items in by_voice.values():
        for i in range(0, len(items), JOB_UTTERANCES):
            chunks.append((i, items[i : i + JOB_UTTERANCES]))
    chunks.sort(key=lambda c: (c[0], c[1][0].uid))
    return [Job(str(dest), c[1][0].voice, tuple(c[1])) for c in chunks]


def _check_settings(dest: Path, record: dict) -> None:
    path = dest / "corpus.json"
    record = json.loads(json.dumps(record))  # tuples become lists, as when read back
    if path.exists():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            old = None
        if isinstance(old, dict) and isinstance(old.get("config"), dict):
            # Settings added since that corpus was made read as their defaults.
            defaults = json.loads(json.dumps(CorpusConfig().to_dict()))
            old["config"] = {**defaults, **old["config"]}
        if old != record:
            raise Wav2Vec2Error(
                "this folder holds a corpus made with other settings (or other text); "
                "use a new folder, or the same --hours/--seed/--sources/--vocabulary/augmentation "
                "to resume",
                dest,
            )
    else:
        write_text_atomic(path, json.dumps(record, indent=2, sort_keys=True) + "\n")


def _clean_partial(dest: Path) -> None:
    """Remove temporary files an interrupted run left behind."""
    audio = dest / "audio"
    if audio.is_dir():
        for mark in (TMP_PREFIX, TMP_MARK):
            for tmp in audio.rglob(f"{mark}*"):
                tmp.unlink(missing_ok=True)


def make_corpus(
    dest: str | Path,
    config: CorpusConfig,
    workers: int | None = None,
    install: bool = True,
    progress: bool = True,
    log: Callable[[str], None] = lambda m: print(m, file=sys.stderr),
) -> dict:
    """Make (or finish) the corpus in ``dest``; return the summary."""
    dest = Path(dest).resolve()
    check_dir_dest(dest)
    ensure_system_packages(install=install, log=log)
    started = time.monotonic()
    blocks = _sentence_blocks(config.min_words, config.max_words, config.sources, config.vocabulary)
    plan = plan_corpus(blocks, config)
    record = {"config": config.to_dict(), "plan_digest": plan_digest(plan)}
    ensure_dir(dest)
    _check_settings(dest, record)
    _clean_partial(dest)

    made: dict[str, int] = {}
    pending = []
    for u in plan:
        path = dest / u.relpath
        if path.exists():
            made[u.uid] = sf.info(str(path)).frames
        else:
            pending.append(u)
    if made:
        log(f"resuming: {len(made)} of {len(plan)} utterances already made")
    failed: dict[str, str] = {}
    jobs = _jobs(dest, pending)
    workers = max(1, workers or os.cpu_count() or 1)
    bar = tqdm(
        total=len(plan),
        initial=len(made),
        unit="utt",
        desc="synthesizing",
        disable=not progress,
        dynamic_ncols=True,
    )
    new_samples = 0
    synth_started = time.monotonic()
    pool = None
    try:
        if workers == 1 or not jobs:
            results_iter = map(_run_job_safe, jobs)
        else:
            # spawn: workers start clean, whatever the parent process has imported.
            pool = multiprocessing.get_context("spawn").Pool(workers)
            results_iter = pool.imap_unordered(_run_job_safe, jobs)
        for results in results_iter:
            for uid, samples, error in results:
                if error:
                    failed[uid] = error
                else:
                    made[uid] = samples
                    new_samples += samples
            bar.update(len(results))
            wall = time.monotonic() - synth_started
            bar.set_postfix_str(f"{new_samples / SAMPLE_RATE / 3600 / (wall / 60):.2f} h audio/min")
        if pool is not None:
            pool.close()
            pool.join()
    except BaseException:
        if pool is not None:
            pool.terminate()
        raise
    finally:
        bar.close()
    if failed:
        log(f"{len(failed)} utterances failed and are left out (listed in summary.json)")
    done = [Made(u, made[u.uid]) for u in plan if u.uid in made]
    summary = write_outputs(dest, done, config, failed)
    lm_text = lm_sentences(blocks, plan)
    write_text_atomic(dest / "lm.txt", "".join(line + "\n" for line in lm_text))
    wall = time.monotonic() - started
    summary_speed = {
        "wall_seconds": round(wall, 1),
        "new_audio_hours": round(new_samples / SAMPLE_RATE / 3600, 4),
        "workers": workers,
    }
    log(
        f"made {summary['total_hours']:.2f} h in {dest} "
        f"({summary_speed['new_audio_hours']:.2f} h new in {wall:.0f} s with {workers} workers)"
    )
    return {**summary, "run": summary_speed}

"""Write a made corpus's manifests, labels, letter dictionary and summary.

Split files in DEST (fairseq layout, see :mod:`wav2vec2.data.manifest`):

- ``pretrain.tsv``: every training utterance, unlabeled (no dev/test speaker or sentence).
- ``train_10m``, ``train_1h``, ``train_10h`` (``.tsv/.wrd/.ltr``): nested labeled subsets,
  as Libri-light's; each is a prefix of the same randomly ordered training list, so
  10m is inside 1h, which is inside 10h. A subset larger than the training audio is capped.
- ``dev`` and ``test`` (``.tsv/.wrd/.ltr``), ``dict.ltr.txt``, ``summary.json``, ``summary.md``.
- ``utterances.tsv``: per utterance, its split, speaker, voice, speed, pitch and augmentation.
"""

from __future__ import annotations

import json
import string
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from wav2vec2.atomic import write_text_atomic
from wav2vec2.audio import SAMPLE_RATE
from wav2vec2.corpus.plan import CorpusConfig, Utterance
from wav2vec2.data.manifest import (
    letter_counts,
    letters_from_words,
    write_dictionary,
    write_labels,
    write_manifest,
)
from wav2vec2.vocab import WORD_DELIMITER

# Nested labeled subsets: name -> target seconds.
LABELED_SUBSETS = {"train_10m": 600.0, "train_1h": 3600.0, "train_10h": 36000.0}
# The output alphabet: fixed, so that every corpus has the same 28-symbol dictionary.
ALPHABET = (WORD_DELIMITER, *string.ascii_uppercase, "'")


@dataclass(frozen=True)
class Made:
    """An utterance that exists on disk, with its real length in samples."""

    utterance: Utterance
    num_samples: int

    @property
    def seconds(self) -> float:
        return self.num_samples / SAMPLE_RATE


def labeled_subsets(train: list[Made]) -> tuple[dict[str, list[Made]], dict[str, bool]]:
    """Nested prefixes of the training list, and whether each had to be capped."""
    subsets, capped = {}, {}
    for name, target in LABELED_SUBSETS.items():
        chosen, total = [], 0.0
        for made in train:
            if total >= target:
                break
            chosen.append(made)
            total += made.seconds
        subsets[name] = chosen
        capped[name] = total < target
    return subsets, capped


def _write_split(dest: Path, name: str, items: list[Made], labels: bool) -> None:
    write_manifest(
        dest / f"{name}.tsv", dest, [(m.utterance.relpath, m.num_samples) for m in items]
    )
    if labels:
        words = [m.utterance.words for m in items]
        write_labels(dest / f"{name}.wrd", words)
        write_labels(dest / f"{name}.ltr", [letters_from_words(w) for w in words])


def _write_metadata(path: Path, made: list[Made]) -> None:
    """Who says each utterance, and how: for analysis per voice (not needed for training)."""
    lines = ["path\tsplit\tspeaker\tvoice\trate\tpitch\tspeed\trt60_s\tsnr_db\tnoise"]
    for m in made:
        u, a = m.utterance, m.utterance.augment
        noise = a.noise if a.snr_db is not None else ""
        lines.append(
            f"{u.relpath}\t{u.split}\t{u.voice.speaker}\t{u.voice.id}\t{u.rate}\t{u.pitch}\t"
            f"{a.speed}\t{a.rt60_s}\t{'' if a.snr_db is None else a.snr_db}\t{noise}"
        )
    write_text_atomic(path, "\n".join(lines) + "\n")


def _stats(items: list[Made]) -> dict:
    seconds = [m.seconds for m in items]
    words = [w for m in items for w in m.utterance.words.split()]
    return {
        "utterances": len(items),
        "hours": round(sum(seconds) / 3600, 4),
        "mean_seconds": round(sum(seconds) / len(seconds), 2) if seconds else 0.0,
        "min_seconds": round(min(seconds), 2) if seconds else 0.0,
        "max_seconds": round(max(seconds), 2) if seconds else 0.0,
        "share_10_to_20_seconds": (
            round(sum(10 <= s <= 20 for s in seconds) / len(seconds), 3) if seconds else 0.0
        ),
        "words": len(words),
        "vocabulary": len(set(words)),
        "speakers": sorted({m.utterance.voice.speaker for m in items}),
        "voices": sorted({m.utterance.voice.id for m in items}),
        "augmented": sum(not m.utterance.augment.is_identity for m in items),
    }


def write_outputs(
    dest: Path, made: list[Made], config: CorpusConfig, failed: dict[str, str]
) -> dict:
    """Write every split file and the summary; return the summary."""
    by_split: dict[str, list[Made]] = {"train": [], "dev": [], "test": []}
    for m in made:
        by_split[m.utterance.split].append(m)
    train = by_split["train"]
    subsets, capped = labeled_subsets(train)

    _write_split(dest, "pretrain", train, labels=False)
    for name, items in subsets.items():
        _write_split(dest, name, items, labels=True)
    for name in ("dev", "test"):
        _write_split(dest, name, by_split[name], labels=True)
    _write_metadata(dest / "utterances.tsv", made)
    counts = letter_counts(m.utterance.words for m in train)
    write_dictionary(dest / "dict.ltr.txt", {s: counts.get(s, 0) for s in ALPHABET})

    splits = {"pretrain": train, **subsets, "dev": by_split["dev"], "test": by_split["test"]}
    stats = {name: _stats(items) for name, items in splits.items()}
    for name in LABELED_SUBSETS:
        stats[name]["capped"] = capped[name]
    train_vocab = Counter(w for m in train for w in m.utterance.words.split())
    for name in ("dev", "test"):
        words = [w for m in by_split[name] for w in m.utterance.words.split()]
        oov = sum(w not in train_vocab for w in words)
        stats[name]["oov_rate_vs_pretrain"] = round(oov / len(words), 4) if words else 0.0
    summary = {
        "config": config.to_dict(),
        "sample_rate": SAMPLE_RATE,
        "total_hours": round(sum(m.seconds for m in made) / 3600, 4),
        "vocabulary": len({w for m in made for w in m.utterance.words.split()}),
        "letters": len(ALPHABET),
        "splits": stats,
        "failed": failed,
    }
    write_text_atomic(dest / "summary.json", json.dumps(summary, indent=2, sort_keys=True) + "\n")
    write_text_atomic(dest / "summary.md", summary_markdown(summary))
    return summary


def summary_markdown(summary: dict) -> str:
    """A readable summary: a table of splits, then who speaks in each."""
    config = summary["config"]
    size = config["vocabulary"]
    closed = f" (closed: the {size} most frequent words)" if size else ""
    lines = [
        "# Built-in speech corpus",
        "",
        f"{summary['total_hours']:.2f} hours of 16 kHz speech (seed {config['seed']}, "
        f"{config['hours']} hours requested); word vocabulary {summary['vocabulary']}{closed}, "
        f"{summary['letters']} letter symbols.",
        "",
        "| split | utterances | hours | mean s | 10-20 s | speakers | words | vocabulary | note |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, s in summary["splits"].items():
        note = []
        if s.get("capped"):
            note.append("capped: not enough training audio")
        if "oov_rate_vs_pretrain" in s:
            note.append(f"OOV vs pretrain {100 * s['oov_rate_vs_pretrain']:.1f}%")
        if s["augmented"]:
            note.append(f"{s['augmented']} augmented")
        lines.append(
            f"| {name} | {s['utterances']} | {s['hours']:.3f} | {s['mean_seconds']:.1f} | "
            f"{100 * s['share_10_to_20_seconds']:.0f}% | {len(s['speakers'])} | {s['words']} | "
            f"{s['vocabulary']} | {'; '.join(note)} |"
        )
    lines.append("")
    for name in ("pretrain", "dev", "test"):
        lines.append(f"**{name} voices:** {', '.join(summary['splits'][name]['voices'])}")
        lines.append("")
    if summary["failed"]:
        lines.append(f"**Failed utterances (left out):** {len(summary['failed'])}")
        lines.append("")
    return "\n".join(lines)

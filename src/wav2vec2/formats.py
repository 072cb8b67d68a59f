"""Transcripts as text: ``txt``, ``json``, ``jsonl``, ``srt``, ``vtt`` and ``tsv``.

- ``txt``: the transcript.
- ``json``: one object with ``path``, ``text``, ``duration``, ``words`` (each with ``word``,
  ``start``, ``end`` in seconds and ``confidence``), ``chars`` when asked for, and
  ``error`` for an input that failed. ``jsonl`` is the same object on one line.
- ``srt`` / ``vtt``: subtitles, words grouped into cues of at most ``CUE_CHARS`` characters
  and ``CUE_SECONDS`` seconds, a new cue after a pause of ``CUE_PAUSE`` seconds.
- ``tsv``: ``start<TAB>end<TAB>text<TAB>confidence`` with a header, one row per word (per
  character with ``chars=True``).
"""

from __future__ import annotations

import json

from wav2vec2.inference import Transcript
from wav2vec2.timestamps import Segment

FORMATS = ("txt", "json", "jsonl", "srt", "vtt", "tsv")
CUE_CHARS, CUE_SECONDS, CUE_PAUSE = 42, 5.0, 1.0  # a common subtitle line: 42 characters


def record(t: Transcript, chars: bool = False) -> dict:
    out = {"path": t.source, "text": t.text, "duration": round(t.duration, 3),
           "words": [w.to_dict("word") for w in t.words]}  # fmt: skip
    if chars:
        out["chars"] = [c.to_dict("char") for c in t.chars]
    if not t.ok:
        out["error"] = t.error
    return out


def render(t: Transcript, fmt: str, chars: bool = False) -> str:
    """One input's transcript in ``fmt`` (one of :data:`FORMATS`), ending in a newline."""
    if fmt == "txt":
        return t.text + "\n"
    if fmt == "json":
        return json.dumps(record(t, chars), ensure_ascii=False, indent=2) + "\n"
    if fmt == "jsonl":
        return json.dumps(record(t, chars), ensure_ascii=False) + "\n"
    if fmt == "tsv":
        rows = t.chars if chars else t.words
        lines = ["start\tend\ttext\tconfidence"]
        lines += [f"{s.start:.3f}\t{s.end:.3f}\t{s.text}\t{s.confidence:.4f}" for s in rows]
        return "\n".join(lines) + "\n"
    if fmt in ("srt", "vtt"):
        return subtitles(cues(t.words), fmt)
    raise ValueError(f"unknown format {fmt!r}")


def cues(words: tuple[Segment, ...] | list[Segment]) -> list[Segment]:
    """Words grouped into subtitle cues (see the module doc)."""
    out: list[Segment] = []
    group: list[Segment] = []
    for word in [*words, None]:
        if group and (
            word is None
            or word.start - group[-1].end > CUE_PAUSE
            or word.end - group[0].start > CUE_SECONDS
            or len(" ".join(w.text for w in [*group, word])) > CUE_CHARS
        ):
            text = " ".join(w.text for w in group)
            confidence = sum(w.confidence for w in group) / len(group)
            out.append(Segment(text, group[0].start, group[-1].end, confidence))
            group = []
        if word is not None:
            group.append(word)
    return out


def subtitles(cues: list[Segment], fmt: str) -> str:
    """SubRip (``srt``: numbered cues, ``00:00:01,250``) or WebVTT (``vtt``: a header,
    ``00:00:01.250``)."""
    sep = "," if fmt == "srt" else "."
    blocks = ["WEBVTT\n"] if fmt == "vtt" else []
    for n, cue in enumerate(cues, 1):
        times = f"{_clock(cue.start, sep)} --> {_clock(cue.end, sep)}"
        blocks.append(f"{n}\n{times}\n{cue.text}\n" if fmt == "srt" else f"{times}\n{cue.text}\n")
    return "\n".join(blocks)


def _clock(seconds: float, sep: str) -> str:
    ms = round(seconds * 1000)
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"

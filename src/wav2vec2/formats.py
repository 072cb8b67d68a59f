"""Transcripts and alignments as text: ``txt``, ``json``, ``jsonl``, ``srt``, ``vtt``, ``tsv``
and (alignments) ``textgrid``.

- ``txt``: the transcript.
- ``json``: one object with ``path``, ``text``, ``duration``, ``words`` (each with ``word``,
  ``start``, ``end`` in seconds and ``confidence``), ``chars`` when asked for, and
  ``error`` for an input that failed. ``jsonl`` is the same object on one line.
- ``srt`` / ``vtt``: subtitles, words grouped into cues of at most ``CUE_CHARS`` characters
  and ``CUE_SECONDS`` seconds, a new cue after a pause of ``CUE_PAUSE`` seconds.
- ``tsv``: ``start<TAB>end<TAB>text<TAB>confidence`` with a header, one row per word (per
  character with ``chars=True``).
- ``textgrid``: Praat's TextGrid (long text form, written by praatio), a ``words`` tier and
  a ``chars`` tier (letters and word delimiters); the gaps between intervals (blanks:
  silence, and the frames between CTC's narrow peaks) are empty intervals, as Praat expects.

An :class:`~wav2vec2.alignment.Alignment` renders as a transcript does (:data:`ALIGN_FORMATS`);
its JSON adds ``log_prob`` (of the forced path) and always has ``chars``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from wav2vec2.alignment import Alignment
from wav2vec2.inference import Transcript
from wav2vec2.timestamps import Segment

FORMATS = ("txt", "json", "jsonl", "srt", "vtt", "tsv")
ALIGN_FORMATS = ("json", "tsv", "srt", "vtt", "textgrid")
EXTENSIONS = {"textgrid": "TextGrid"}  # output file extensions that differ from the name
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
    if fmt in ("json", "jsonl"):
        return _json(record(t, chars), fmt)
    return _timed(t.words, t.chars, fmt, chars)


def alignment_record(a: Alignment) -> dict:
    return {"path": a.source, "text": a.text, "duration": round(a.duration, 3),
            "log_prob": round(a.log_prob, 3), "words": [w.to_dict("word") for w in a.words],
            "chars": [c.to_dict("char") for c in a.chars]}  # fmt: skip


def render_alignment(a: Alignment, fmt: str, chars: bool = False) -> str:
    """One alignment in ``fmt`` (one of :data:`ALIGN_FORMATS`), ending in a newline."""
    if fmt == "json":
        return _json(alignment_record(a), fmt)
    if fmt == "textgrid":
        return textgrid(a.words, a.chars, a.duration)
    return _timed(a.words, a.chars, fmt, chars)


def extension(fmt: str) -> str:
    """The file extension of an output in ``fmt``."""
    return EXTENSIONS.get(fmt, fmt)


def _json(obj: dict, fmt: str) -> str:
    return json.dumps(obj, ensure_ascii=False, indent=2 if fmt == "json" else None) + "\n"


def _timed(words: Sequence[Segment], letters: Sequence[Segment], fmt: str, chars: bool) -> str:
    """The formats made of timed segments alone: ``tsv`` (letters with ``chars``), ``srt``
    and ``vtt`` (words into cues)."""
    if fmt == "tsv":
        return table(letters if chars else words)
    if fmt in ("srt", "vtt"):
        return subtitles(cues(words), fmt)
    raise ValueError(f"unknown format {fmt!r}")


def table(rows: Sequence[Segment]) -> str:
    """``start<TAB>end<TAB>text<TAB>confidence`` with a header, one row per segment."""
    lines = ["start\tend\ttext\tconfidence"]
    lines += [f"{s.start:.3f}\t{s.end:.3f}\t{s.text}\t{s.confidence:.4f}" for s in rows]
    return "\n".join(lines) + "\n"


def cues(words: Sequence[Segment]) -> list[Segment]:
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


def textgrid(words: Sequence[Segment], chars: Sequence[Segment], duration: float) -> str:
    """A TextGrid with a ``words`` and a ``chars`` tier (letters and word delimiters, as in
    the JSON), times to the millisecond, from 0 to the end of the audio."""
    # praatio is imported here, not at the top: transcripts never need it
    from praatio.utilities.constants import INTERVAL_TIER, Interval
    from praatio.utilities.textgrid_io import getTextgridAsStr

    end = round(max([duration, *(s.end for s in chars)]), 3)
    tiers = [
        {"class": INTERVAL_TIER, "name": name, "xmin": 0.0, "xmax": end,
         "entries": [Interval(round(s.start, 3), round(s.end, 3), s.text) for s in segments]}
        for name, segments in (("words", words), ("chars", chars))
    ]  # fmt: skip
    # the dict form praatio's own Textgrid.save builds; getTextgridAsStr returns the text,
    # so that it is written like every other output (atomically, or to stdout)
    grid = {"xmin": 0.0, "xmax": end, "tiers": tiers}
    return getTextgridAsStr(grid, "long_textgrid", includeBlankSpaces=True,
                            minimumIntervalLength=None)  # fmt: skip

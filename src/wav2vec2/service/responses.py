"""Transcripts as the service answers them: our JSON, and OpenAI's ``response_format``s.

The text formats (``text``, ``srt``, ``vtt``) are :mod:`wav2vec2.formats`' own, as the CLI
writes them; ``verbose_json`` is OpenAI's shape, its segments the subtitle cues.
"""

from __future__ import annotations

import math
import zlib

from wav2vec2.formats import cues, record
from wav2vec2.inference import Transcript

OPENAI_FORMATS = ("json", "text", "srt", "vtt", "verbose_json")
GRANULARITIES = ("word", "segment")
RENDER_FORMATS = {"txt": "text/plain", "srt": "application/x-subrip", "vtt": "text/vtt"}


def ours(t: Transcript, model: str) -> dict:
    """``{text, words: [{word, start, end, confidence}], duration, model}`` (the CLI's JSON
    record, without the source, which is a request here)."""
    out = record(t)
    del out["path"]
    out["model"] = model
    return out


def verbose_json(t: Transcript, granularities: set[str], language: str | None) -> dict:
    """OpenAI's ``verbose_json``: duration, text, segments (subtitle cues) and, with the
    ``word`` granularity, words. Its per-segment fields are ours where we have them:
    ``avg_logprob`` is the log of the cue's mean word confidence (the mean posterior of its
    letters over their frames), ``compression_ratio`` is computed as Whisper computes it,
    and ``temperature`` is 0 (decoding never samples). ``language`` is what the client said,
    as the model does not detect one."""
    out: dict = {"task": "transcribe", "language": language or "unknown",
                 "duration": round(t.duration, 3), "text": t.text}  # fmt: skip
    if "segment" in granularities or "word" not in granularities:
        out["segments"] = [
            {
                "id": i,
                "seek": 0,
                "start": round(c.start, 3),
                "end": round(c.end, 3),
                "text": c.text,
                "tokens": [],
                "temperature": 0.0,
                "avg_logprob": round(math.log(max(c.confidence, 1e-9)), 4),
                "compression_ratio": round(_compression_ratio(c.text), 4),
            }  # fmt: skip
            for i, c in enumerate(cues(t.words))
        ]
    if "word" in granularities:
        out["words"] = [
            {"word": w.text, "start": round(w.start, 3), "end": round(w.end, 3)} for w in t.words
        ]
    return out


def _compression_ratio(text: str) -> float:
    data = text.encode()
    return len(data) / len(zlib.compress(data)) if data else 0.0

"""Audio out of a request: a multipart ``file`` field or the raw body, decoded in memory.

Nothing is written to disk by this module. Starlette's form parser keeps a file part in
memory up to 1 MiB and beyond that in an anonymous temporary file (``SpooledTemporaryFile``:
unlinked when made, so it leaves nothing behind even if the process is killed), closed when
the request is done. The upload's name is only ever quoted in messages: no file-system path
is taken from a request.
"""

from __future__ import annotations

import asyncio

import numpy as np
from fastapi import Request

from wav2vec2.audio import AudioTooLong, read_audio_bytes
from wav2vec2.errors import Wav2Vec2Error
from wav2vec2.service.limits import ApiError

RAW_TYPES = ("audio/", "video/", "application/octet-stream")
FORM_LIMITS = {"max_files": 1, "max_fields": 16, "max_part_size": 64 * 1024}  # non-file parts


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def read_form(request: Request):
    """The multipart form (``async with``: its files are closed afterwards)."""
    if media_type(request) != "multipart/form-data":
        raise ApiError(415, f"expected multipart/form-data with a 'file' field, got "
                       f"{media_type(request) or 'no Content-Type'}")  # fmt: skip
    return request.form(**FORM_LIMITS)


async def file_field(form) -> tuple[bytes, str]:
    """(the bytes of the form's ``file`` part, a name for messages)."""
    upload = form.get("file")
    if upload is None or isinstance(upload, str):
        raise ApiError(400, "no audio: send the audio as the multipart field 'file'")
    return await upload.read(), _name(upload.filename)


async def raw_body(request: Request) -> tuple[bytes, str]:
    """(the body, a name for messages); 415 unless it is declared as audio (or bytes)."""
    kind = media_type(request)
    if kind and not kind.startswith(RAW_TYPES):
        raise ApiError(415, f"expected audio (multipart field 'file', or a raw body of type "
                       f"audio/* or application/octet-stream), got {kind}")  # fmt: skip
    return await request.body(), "request body"


async def decode(data: bytes, name: str, sample_rate: int, max_seconds: float) -> np.ndarray:
    """16 kHz mono float32 from an upload's bytes, off the event loop (decoding a long file
    takes a while); 413 over ``max_seconds``, 422 for anything that is not usable audio,
    with the CLI's message for the same file."""
    try:
        return await asyncio.to_thread(read_audio_bytes, data, name, sample_rate, max_seconds)
    except AudioTooLong as exc:
        raise ApiError(413, str(exc)) from None
    except Wav2Vec2Error as exc:
        raise ApiError(422, str(exc)) from None


def _name(filename: str | None) -> str:
    """The upload's name as messages quote it: its last part, printable, short."""
    base = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(c for c in base if c.isprintable())[:80]
    return f"upload {base!r}" if base else "upload"

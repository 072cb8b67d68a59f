"""``WS /v1/listen``: live transcription over a WebSocket.

Protocol (JSON text frames, binary audio frames):

- Connect to ``/v1/listen?encoding=pcm_s16le`` (or ``f32le``): 16 kHz mono samples,
  little-endian. With an API key: an ``Authorization``/``X-API-Key`` header, or (browsers
  cannot set headers on a WebSocket) a first text message ``{"api_key": "..."}``.
- Send audio as binary messages of any length, as it is recorded.
- The service sends ``{"type": "partial", "text", "words", "duration"}`` as audio arrives
  (at most every ``partial_every`` seconds of audio, and never more than one at a time).
- Send ``{"type": "stop"}``: the service sends ``{"type": "final", "text", "words",
  "duration", "model"}``, the transcript of the whole recording, and closes.
- An error is ``{"type": "error", "error": {...}}`` (the HTTP shape), then a close with
  code 4000 + the HTTP status (4401 no key, 4413 too long, 4422 bad audio, 4503 busy).
"""

from __future__ import annotations

import asyncio
import contextlib
import json

from fastapi import WebSocket, WebSocketDisconnect
from starlette.responses import JSONResponse

from wav2vec2.audio import AudioTooLong
from wav2vec2.errors import Wav2Vec2Error
from wav2vec2.service.limits import error_body, key_matches, presented_key
from wav2vec2.service.responses import ours
from wav2vec2.service.streaming import ENCODINGS, LiveTranscript, samples


class _Refused(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


async def endpoint(websocket: WebSocket, encoding: str = "pcm_s16le") -> None:
    app = websocket.app
    config = app.state.config
    header_key = presented_key(websocket.headers)
    if header_key is not None and not key_matches(config.api_key, header_key):
        return await _deny(websocket, 401, "wrong API key")
    if encoding not in ENCODINGS:
        return await _deny(websocket, 400, f"encoding must be one of {', '.join(ENCODINGS)}")
    if app.state.streams >= config.max_streams:
        return await _deny(websocket, 503, f"{config.max_streams} live streams run already")
    app.state.streams += 1
    try:
        await websocket.accept()
        await _session(websocket, encoding, needs_key=not key_matches(config.api_key, header_key))
    except _Refused as exc:
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            await websocket.send_json({"type": "error", **error_body(exc.status, str(exc))})
            await websocket.close(4000 + exc.status, str(exc)[:120])
    except WebSocketDisconnect:
        pass  # the client left: nothing to answer
    finally:
        app.state.streams -= 1


async def _session(websocket: WebSocket, encoding: str, needs_key: bool) -> None:
    app = websocket.app
    config, batcher = app.state.config, app.state.batcher
    live = LiveTranscript(app.state.engine, config.max_audio_seconds)
    every = int(config.partial_every * live.rate)  # samples between partials
    last_partial = 0
    running: asyncio.Task | None = None

    async def send_partial(wave) -> None:
        t = await batcher.call(live.partial, wave)
        if t is not None:
            await websocket.send_json({"type": "partial", **_words(t), "duration": live.seconds})

    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                raise WebSocketDisconnect(message.get("code", 1000))
            if message.get("text") is not None:
                command = _command(message["text"])
                if needs_key:
                    if not key_matches(config.api_key, command.get("api_key")):
                        raise _Refused(401, "missing or wrong API key")
                    needs_key = False
                    continue
                if command.get("type") == "stop":
                    break
                continue
            if needs_key:
                raise _Refused(401, 'missing API key: send {"api_key": ...} first')
            try:
                live.add(samples(message.get("bytes") or b"", encoding))
            except AudioTooLong as exc:
                raise _Refused(413, str(exc)) from None
            except Wav2Vec2Error as exc:
                raise _Refused(422, str(exc)) from None
            due = live.received - last_partial >= every
            if due and (running is None or running.done()):
                last_partial = live.received
                running = asyncio.create_task(send_partial(live.snapshot()))
        if running is not None:
            await running
        t = await batcher.call(live.final, live.snapshot())
        if not t.ok:
            raise _Refused(422, t.error or "no audio")
        await websocket.send_json({"type": "final", **ours(t, app.state.model_id)})
        await websocket.close(1000)
    finally:
        if running is not None:
            running.cancel()  # the client left, or an error ends the stream
            # retrieved, so that a partial that failed with the socket is not logged as lost
            running.add_done_callback(lambda task: task.cancelled() or task.exception())


def _words(t) -> dict:
    return {"text": t.text, "words": [w.to_dict("word") for w in t.words]}


def _command(text: str) -> dict:
    try:
        command = json.loads(text)
    except ValueError:
        raise _Refused(400, 'text messages must be JSON, e.g. {"type": "stop"}') from None
    if not isinstance(command, dict):
        raise _Refused(400, "text messages must be JSON objects")
    return command


async def _deny(websocket: WebSocket, status: int, message: str) -> None:
    """Refuse the handshake with an HTTP answer (401, 503, ...) and a JSON error."""
    await websocket.send_denial_response(JSONResponse(error_body(status, message), status))

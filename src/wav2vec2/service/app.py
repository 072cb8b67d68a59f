"""The service's routes: an app factory over one :class:`Wav2Vec2Inference`.

It adds no recognition of its own: requests become arrays, arrays go through the batcher
to the engine, and transcripts come back in the formats of :mod:`wav2vec2.formats`.

- ``POST /v1/audio/transcriptions``: OpenAI's transcription API (multipart ``file``,
  ``response_format``, ``timestamp_granularities[]``).
- ``POST /v1/transcribe``: our JSON; the audio as multipart ``file`` or the raw body.
- ``POST /v1/render``: a transcript (our JSON) as ``txt``, ``srt`` or ``vtt`` (the page's
  downloads).
- ``WS /v1/listen``: live transcription (:mod:`wav2vec2.service.listen`).
- ``GET /health``, ``GET /v1/models``; ``GET /``: the web page.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from wav2vec2 import __version__
from wav2vec2.formats import render
from wav2vec2.inference import Transcript, Wav2Vec2Inference
from wav2vec2.service import listen
from wav2vec2.service.batching import Batcher, QueueFull
from wav2vec2.service.config import ServiceConfig
from wav2vec2.service.limits import ApiError, BodyLimit, error_response, require_key
from wav2vec2.service.responses import (
    GRANULARITIES,
    OPENAI_FORMATS,
    RENDER_FORMATS,
    ours,
    verbose_json,
)
from wav2vec2.service.uploads import decode, file_field, raw_body, read_form
from wav2vec2.timestamps import Segment

# The page's files, read once from the package: a request never names a file.
PAGE = {"/": ("index.html", "text/html"), "/app.js": ("app.js", "text/javascript"),
        "/recorder.js": ("recorder.js", "text/javascript"),
        "/style.css": ("style.css", "text/css")}  # fmt: skip

MULTIPART = {"multipart/form-data": {"schema": {"type": "object", "required": ["file"],
             "properties": {"file": {"type": "string", "format": "binary"}}}}}  # fmt: skip
OPENAI_FORM = {
    "type": "object", "required": ["file"],
    "properties": {
        "file": {"type": "string", "format": "binary"},
        "model": {"type": "string", "description": "accepted and ignored: one model is served"},
        "response_format": {"type": "string", "enum": list(OPENAI_FORMATS), "default": "json"},
        "timestamp_granularities[]": {"type": "array",
                                      "items": {"type": "string", "enum": list(GRANULARITIES)}},
        "language": {"type": "string", "description": "echoed in verbose_json"},
    },
}  # fmt: skip


class WordIn(BaseModel):
    word: str
    start: float
    end: float
    confidence: float = Field(1.0, ge=0, le=1)


class TranscriptIn(BaseModel):
    """A transcript in our JSON (what ``/v1/transcribe`` answered), to render."""

    text: str = Field(max_length=1_000_000)
    words: list[WordIn] = Field(default_factory=list, max_length=200_000)
    duration: float = Field(0.0, ge=0)


def create_app(
    engine: Wav2Vec2Inference, config: ServiceConfig | None = None, model_id: str | None = None
) -> FastAPI:
    """The service over ``engine``; ``model_id``: its name in answers (default: the model
    directory's name)."""
    config = config or ServiceConfig()
    model_id = model_id or Path(engine.source).name or "wav2vec2"
    batcher = Batcher(engine.transcribe, config.queue, config.max_batch, config.batch_wait)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await batcher.start()
        yield
        await batcher.stop()

    app = FastAPI(
        title="wav2vec2 transcription service", version=__version__, lifespan=lifespan,
        description="Speech to text with word times; OpenAI-compatible transcriptions.",
    )  # fmt: skip
    app.state.config, app.state.engine, app.state.batcher = config, engine, batcher
    app.state.model_id, app.state.streams = model_id, 0
    _errors(app)
    app.add_middleware(BodyLimit, limit=config.max_upload_bytes)
    api = APIRouter(dependencies=[Depends(require_key)])

    async def transcript(data: bytes, name: str) -> Transcript:
        audio = await decode(data, name, engine.cfg.sample_rate, config.max_audio_seconds)
        try:
            t = await batcher.submit(audio)
        except QueueFull:
            raise busy() from None
        if not t.ok:  # e.g. too short for the model: the engine's own words
            raise ApiError(422, f"{name}: {t.error}")
        return t

    def busy() -> ApiError:
        return ApiError(503, f"the service is busy ({config.queue} requests wait already); "
                        "retry later", {"Retry-After": str(config.retry_after)})  # fmt: skip

    def refuse_if_full() -> None:
        """503 before the body is read, when the queue is full already."""
        if batcher.full:
            raise busy()

    @api.post(
        "/v1/audio/transcriptions",
        summary="Transcribe audio (OpenAI-compatible)",
        openapi_extra={"requestBody": {"required": True,
                       "content": {"multipart/form-data": {"schema": OPENAI_FORM}}}},
        responses={200: {"content": {"application/json": {}, "text/plain": {}}}},
    )  # fmt: skip
    async def openai_transcriptions(request: Request):
        refuse_if_full()
        async with read_form(request) as form:
            fmt = str(form.get("response_format") or "json")
            granularities = {str(g) for g in form.getlist("timestamp_granularities[]")}
            language = form.get("language")
            if fmt not in OPENAI_FORMATS:
                raise ApiError(400, f"response_format must be one of {', '.join(OPENAI_FORMATS)},"
                               f" got {fmt[:40]!r}")  # fmt: skip
            if not granularities <= set(GRANULARITIES):
                raise ApiError(400, "timestamp_granularities[] must be word or segment")
            data, name = await file_field(form)
        t = await transcript(data, name)
        if fmt == "json":
            return {"text": t.text}
        if fmt == "verbose_json":
            return verbose_json(t, granularities, str(language)[:40] if language else None)
        kind = "text/plain" if fmt == "text" else RENDER_FORMATS[fmt]
        return PlainTextResponse(render(t, "txt" if fmt == "text" else fmt), media_type=kind)

    @api.post(
        "/v1/transcribe",
        summary="Transcribe audio: text, words with times and confidence",
        openapi_extra={"requestBody": {"required": True, "content": {
            **MULTIPART, "audio/*": {"schema": {"type": "string", "format": "binary"}},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}},
    )  # fmt: skip
    async def transcribe(request: Request) -> dict:
        refuse_if_full()
        if request.headers.get("content-type", "").startswith("multipart/"):
            async with read_form(request) as form:
                data, name = await file_field(form)
        else:
            data, name = await raw_body(request)
        return ours(await transcript(data, name), model_id)

    @api.post("/v1/render", summary="A transcript (our JSON) as txt, srt or vtt")
    async def render_transcript(
        body: TranscriptIn, format: str = Query("srt", pattern="^(txt|srt|vtt)$")
    ):
        words = tuple(Segment(w.word, w.start, w.end, w.confidence) for w in body.words)
        t = Transcript("<render>", body.text, body.duration, None, words=words)
        return PlainTextResponse(render(t, format), media_type=RENDER_FORMATS[format])

    @api.get("/health", summary="Whether the service is up, and how full its queue is")
    async def health() -> dict:
        return {"status": "ok", "model": model_id, "queue": batcher.waiting,
                "queue_capacity": config.queue, "streams": app.state.streams,
                "batches_run": batcher.batches_run}  # fmt: skip

    @api.get("/v1/models", summary="The model served (OpenAI's list shape)")
    async def models() -> dict:
        return {
            "object": "list",
            "data": [
                {
                    "id": model_id,
                    "object": "model",
                    "owned_by": "wav2vec2",
                    "sample_rate": engine.cfg.sample_rate,
                    "lm": engine.decoder.__class__.__name__,
                }
            ],
        }

    app.include_router(api)
    app.add_api_websocket_route("/v1/listen", listen.endpoint)
    _page(app)
    return app


def _errors(app: FastAPI) -> None:
    """Every error as JSON in one shape (limits.error_body), never a traceback."""

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        return error_response(exc.status_code, message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        where = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5]
        )
        return error_response(400, f"invalid request: {where}")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # a bug, not the client's fault: still JSON and one line (the log has the traceback)
        return error_response(500, f"internal error ({type(exc).__name__})")


def _page(app: FastAPI) -> None:
    static = resources.files("wav2vec2.service") / "static"
    files = {route: (static.joinpath(name).read_bytes(), kind)
             for route, (name, kind) in PAGE.items()}  # fmt: skip

    def serve(route: str):
        content, kind = files[route]

        async def page() -> Response:
            return Response(content, media_type=kind, headers=PAGE_HEADERS)

        return page

    for route in files:
        app.add_api_route(route, serve(route), methods=["GET"], include_in_schema=False)


# The page runs only its own script, talks only to this origin, and cannot be framed.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; media-src 'self' blob:; "
    "connect-src 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
}

"""What the service refuses, and how: JSON errors and the API key.

Every error is ``{"error": {"message": ..., "type": ..., "code": ...}}``, the shape of
OpenAI's API, so that its clients show the message. The message is one line, as the CLI's.
"""

from __future__ import annotations

import hmac
import json

from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

# HTTP status -> the error's ``type``
TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    415: "unsupported_media_type",
    422: "invalid_audio",
    503: "overloaded",
}


class ApiError(HTTPException):
    """An answer other than 2xx, with a one-line message. (An HTTPException, so that FastAPI
    passes it through as it is from anywhere, a middleware or the body parser included.)"""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(status, " ".join(message.split()), headers)


def error_body(status: int, message: str) -> dict:
    kind = TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": message, "type": kind, "code": status}}


def error_response(status: int, message: str, headers=None) -> JSONResponse:
    return JSONResponse(error_body(status, message), status, headers)


class BodyLimit:
    """ASGI middleware: a request body over ``limit`` bytes gets 413 (JSON). A declared
    Content-Length over it is refused before a byte is read; a body sent in chunks is
    counted as it arrives, and reading it raises once over (the endpoint answers 413).
    (FastAPI's own ``max_body_size`` answers a plain-text 413 in the first case.)"""

    def __init__(self, app, limit: int):
        self.app = app
        self.limit = limit

    def too_large(self) -> ApiError:
        return ApiError(413, f"request body over the {self.limit / 2**20:g} MiB upload limit")

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            exc = self.too_large()
            body = json.dumps(error_body(413, exc.detail)).encode()
            headers = [(b"content-type", b"application/json"), (b"connection", b"close")]
            await send({"type": "http.response.start", "status": 413, "headers": headers})
            return await send({"type": "http.response.body", "body": body})
        seen = 0

        async def counted():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise self.too_large()
            return message

        return await self.app(scope, counted, send)


def presented_key(headers) -> str | None:
    """The key a client sent: ``Authorization: Bearer KEY`` (what OpenAI's clients send) or
    ``X-API-Key: KEY``."""
    auth = headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return headers.get("x-api-key")


def key_matches(expected: str | None, given: str | None) -> bool:
    """True when no key is needed, or ``given`` is it (compared in constant time)."""
    if expected is None:
        return True
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def require_key(request: Request) -> None:
    """A FastAPI dependency of every API route: 401 unless the configured key was sent."""
    expected = request.app.state.config.api_key
    if not key_matches(expected, presented_key(request.headers)):
        raise ApiError(
            401, "missing or wrong API key (send 'Authorization: Bearer KEY')",
            {"WWW-Authenticate": "Bearer"},
        )  # fmt: skip

"""Request bodies bounded before they are read: each request's body is counted as it arrives
and refused with 413 past its endpoint's limit; an API body without a token is refused unread."""

from __future__ import annotations

import re

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.config import ServerConfig
from app.deps import TOKEN_REQUIRED
from app.runtime import Runtime

KB = 1024
MB = 1024 * KB
API_PREFIX = "/api/v1/"
PUSH_PATH = re.compile(r"^/api/v1/environments/[^/]+/snapshots/?$")


class BodyTooLarge(HTTPException):
    """The body passed its endpoint's limit while it was being read. An HTTPException, so
    FastAPI's body reading re-raises it as it is and the app's handler answers 413."""

    def __init__(self, message: str) -> None:
        # The rest of the body is never read: the connection cannot carry another request.
        super().__init__(status_code=413, detail=message, headers={"Connection": "close"})


def body_limit(method: str, path: str, server: ServerConfig) -> tuple[int, str]:
    """The largest body a request may carry, in bytes, and the message that refuses more:
    `server.max_push_mb` for a push, `server.max_body_kb` for everything else."""
    if method == "POST" and PUSH_PATH.match(path):
        return server.max_push_mb * MB, f"the push is larger than {server.max_push_mb} MB"
    return server.max_body_kb * KB, f"the body is larger than {server.max_body_kb} KB"


def _has_body(headers: Headers) -> bool:
    return "transfer-encoding" in headers or headers.get("content-length", "0") not in ("", "0")


def _has_bearer(headers: Headers) -> bool:
    """As FastAPI's HTTPBearer reads it: `Bearer` and something after it."""
    scheme, _, credentials = headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and bool(credentials.strip())


class BodyLimit:
    """Pure ASGI, outside every route: nothing reads more of a body than its limit allows,
    whatever the route does with it.

    - A `Content-Length` over the limit is answered 413 at once; the body is not read.
    - A body sent without a length (chunked) is counted message by message, and the read
      that passes the limit raises `BodyTooLarge` (413).
    - With auth on, a request to `/api/v1/` that carries a body and no bearer token is
      answered 401 before a byte of it is read (the routes check the token itself)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        server = _server(scope)
        limit, too_large = body_limit(scope["method"], scope["path"], server)
        headers = Headers(scope=scope)
        if (
            server.auth
            and scope["path"].startswith(API_PREFIX)
            and _has_body(headers)
            and not _has_bearer(headers)
        ):
            # Closed after the answer: uvicorn would otherwise read the unwanted body through.
            headers401 = {"WWW-Authenticate": "Bearer", "Connection": "close"}
            await _answer(scope, receive, send, 401, TOKEN_REQUIRED, headers401)
            return
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await _answer(scope, receive, send, 413, too_large, {"Connection": "close"})
            return

        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(too_large)
            return message

        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLarge as exc:
            # The app's handler answers it; this is for a route that let it through.
            if started:
                raise
            await _answer(scope, receive, send, 413, exc.detail, {"Connection": "close"})


def _server(scope: Scope) -> ServerConfig:
    runtime: Runtime | None = getattr(scope["app"].state, "runtime", None)
    return runtime.config.model.server if runtime is not None else ServerConfig()


async def _answer(
    scope: Scope, receive: Receive, send: Send, status: int, error: str, headers: dict[str, str]
) -> None:
    response = JSONResponse({"error": error, "detail": None}, status_code=status, headers=headers)
    await response(scope, receive, send)

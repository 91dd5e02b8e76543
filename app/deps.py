"""Request dependencies: the unit of work (commit or roll back at the edge) and scoped auth."""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from app.auth.tokens import TokenRepository, allows, digest
from app.clock import utcnow
from app.errors import EnvparityError
from app.runtime import Runtime
from app.states import Scope


class Unauthorized(EnvparityError):
    status = 401


class Forbidden(EnvparityError):
    status = 403


async def get_runtime(request: Request) -> Runtime:
    # async: a plain attribute read is not worth a hop to the thread pool
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def get_session(runtime: RuntimeDep) -> Iterator[Session]:
    """One transaction per request: committed when the route returns, rolled back if it raises."""
    with runtime.sessions.begin() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]
_bearer = HTTPBearer(auto_error=False, description="An envparity API token (envp_...)")
TOKEN_REQUIRED = "an API token is required: Authorization: Bearer envp_..."


class TokenCache:
    """Verified tokens of this process for a few seconds, so that a busy CI's gate requests
    are not each a database lookup. A revoked token stops working within `ttl` seconds."""

    def __init__(self, ttl: float = 10.0) -> None:
        self.ttl = ttl
        self.entries: dict[str, tuple[str, float, datetime | None]] = {}
        self.lock = threading.Lock()

    def cached(self, token: str) -> str | None:
        with self.lock:
            hit = self.entries.get(digest(token))
        if hit is None or time.monotonic() - hit[1] >= self.ttl:
            return None
        scope, _checked, expires_at = hit
        return scope if expires_at is None or utcnow() < expires_at else None

    def scope_of(self, runtime: Runtime, token: str) -> str | None:
        key = digest(token)
        now = time.monotonic()
        # Its own short transaction: the request's may last (a scan with ?wait=true), and a
        # held write lock (last_used_at) would block the very scan it waits for on SQLite.
        with runtime.sessions.begin() as session:
            row = TokenRepository(session).verify(token, utcnow())
            scope = row.scope if row is not None else None
            expires_at = row.expires_at if row is not None else None
        with self.lock:
            if scope is None:
                self.entries.pop(key, None)
            else:
                if len(self.entries) > 10_000:
                    self.entries.clear()
                self.entries[key] = (scope, now, expires_at)
        return scope


def require(scope: Scope) -> Callable[..., Awaitable[None]]:
    """A dependency that lets the request in with a live token of at least `scope`."""

    async def check(
        request: Request,
        runtime: RuntimeDep,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> None:
        if not runtime.config.model.server.auth:
            return
        if credentials is None:
            raise Unauthorized(TOKEN_REQUIRED)
        await check_token(request, runtime, credentials.credentials, scope)

    return check


async def token_scope(request: Request, runtime: Runtime, token: str) -> str | None:
    """The scope of a live token, or None (unknown, revoked or expired)."""
    # async: a cached token costs no thread hop; a lookup runs in the thread pool.
    cache: TokenCache = request.app.state.tokens
    return cache.cached(token) or await run_in_threadpool(cache.scope_of, runtime, token)


async def check_token(request: Request, runtime: Runtime, token: str, scope: Scope) -> None:
    """Unauthorized or Forbidden unless `token` is live with at least `scope`."""
    scope_granted = await token_scope(request, runtime, token)
    if scope_granted is None:
        raise Unauthorized("the API token is unknown, revoked or expired")
    if not allows(scope_granted, scope):
        raise Forbidden(f"this needs a {scope.value!r} token; this one is {scope_granted!r}")
    request.state.authenticated = True


def authenticated(request: Request) -> bool:
    """The request showed a live token (or auth is off): it may see details of the server,
    such as why the database did not answer."""
    runtime: Runtime | None = getattr(request.app.state, "runtime", None)
    if runtime is not None and not runtime.config.model.server.auth:
        return True
    return bool(getattr(request.state, "authenticated", False))


Read = Depends(require(Scope.READ))
Gate = Depends(require(Scope.GATE))
Write = Depends(require(Scope.WRITE))

# The dashboard: the same tokens, sent once to /login and then kept in an HttpOnly cookie.
SESSION_COOKIE = "envparity_token"


class LoginRequired(Unauthorized):
    """A dashboard page was asked for without a live token in the session cookie."""


def require_cookie(scope: Scope) -> Callable[..., Awaitable[None]]:
    """A dependency for dashboard pages: a live token of at least `scope` in the cookie."""

    async def check(request: Request, runtime: RuntimeDep) -> None:
        if not runtime.config.model.server.auth:
            return
        token = request.cookies.get(SESSION_COOKIE)
        if not token:
            raise LoginRequired("sign in with an API token of scope read or higher")
        try:
            await check_token(request, runtime, token, scope)
        except Unauthorized as exc:
            raise LoginRequired(exc.message) from None

    return check


PageRead = Depends(require_cookie(Scope.READ))

"""Request dependencies: the unit of work (commit or roll back at the edge) and scoped auth."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from app.auth.tokens import TokenRepository, allows
from app.db.base import utcnow
from app.errors import EnvparityError
from app.runtime import Runtime


class Unauthorized(EnvparityError):
    status = 401


class Forbidden(EnvparityError):
    status = 403


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def get_session(runtime: RuntimeDep) -> Iterator[Session]:
    """One transaction per request: committed when the route returns, rolled back if it raises."""
    with runtime.sessions.begin() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]
_bearer = HTTPBearer(auto_error=False, description="An envparity API token (envp_...)")


def require(scope: str) -> Callable[..., None]:
    """A dependency that lets the request in with a live token of at least `scope`."""

    def check(
        runtime: RuntimeDep,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> None:
        if not runtime.config.model.server.auth:
            return
        if credentials is None:
            raise Unauthorized("an API token is required: Authorization: Bearer envp_...")
        # Its own short transaction: the request's may last (a scan with ?wait=true), and a
        # held write lock (last_used_at) would block the very scan it waits for on SQLite.
        with runtime.sessions.begin() as session:
            token = TokenRepository(session).verify(credentials.credentials, utcnow())
            scope_granted = token.scope if token is not None else None
        if token is None or scope_granted is None:
            raise Unauthorized("the API token is unknown, revoked or expired")
        if not allows(scope_granted, scope):
            raise Forbidden(f"this needs a {scope!r} token; this one is {scope_granted!r}")

    return check


Read = Depends(require("read"))
Gate = Depends(require("gate"))
Write = Depends(require("write"))

"""The HTTP API: create_app builds everything in its lifespan; nothing happens at import."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import AsyncIterator, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote_plus

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi_offline import FastAPIOffline
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import DataError, DBAPIError, SQLAlchemyError, StatementError
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import __version__, web
from app import runtime as runtime_mod
from app.api import alerts as alerts_api
from app.api import reports, scans, snapshots
from app.api.limits import BodyLimit
from app.api.schemas import API, ERRORS, Health, Readiness
from app.db import migrate
from app.db.session import ping
from app.deps import Read, RuntimeDep, TokenCache, authenticated
from app.errors import EnvparityError
from app.gate.service import GateCache
from app.metrics import Metrics
from app.reports.service import kept_sides
from collectors.secrets import KeyLexicon
from collectors.secrets.rules import QUERY_SECRETS, vendor_tokens

READY_TIMEOUT = 3.0  # seconds readyz waits for the database to answer
log = logging.getLogger(__name__)
METRICS_EXAMPLE = """\
# HELP envparity_open_drift_items Unwaived drift items at each comparison's last evaluation
# TYPE envparity_open_drift_items gauge
envparity_open_drift_items{comparison="staging->production",severity="critical"} 1.0
"""


def _database_reason(exc: SQLAlchemyError) -> str:
    return str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]


def _unstorable(exc: SQLAlchemyError) -> bool:
    """A value of the request that the database cannot hold: a NUL character or a string past
    its column on PostgreSQL (the DB-API's DataError), a time that leaves the years a datetime
    holds once it is turned to UTC (OverflowError as it is bound). The request's fault, a 422,
    not the database's: a 503 would send clients and probes after an outage there is not."""
    if isinstance(exc, DataError):
        return True
    return (
        isinstance(exc, StatementError)
        and not isinstance(exc, DBAPIError)
        and isinstance(exc.orig, OverflowError | UnicodeError)
    )


METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(routes: list[BaseRoute], scope: Scope) -> str:
    """The methods some route takes at this path, for the `Allow` header of a 405 (Starlette
    names only the first route that matches the path, and GET and POST are often two). Each
    method is tried against the routes: included routers match through their own routes."""
    return ", ".join(
        method
        for method in METHODS
        if any(route.matches({**scope, "method": method})[0] is Match.FULL for route in routes)
    )


def restore_examples(document: dict[str, Any], routes: list[BaseRoute]) -> dict[str, Any]:
    """The document with every example as its route declares it. FastAPI drops each null
    from the document it builds, the examples' nulls too, which leaves an example without
    fields its schema requires (`"error": null` of a scan)."""
    # As FastAPI's get_openapi walks them: included routers' routes with their prefixes.
    for route in iter_route_contexts(routes):
        if not isinstance(route.original_route, APIRoute) or not route.include_in_schema:
            continue
        for method in route.methods or ():
            operation = document["paths"].get(route.path_format, {}).get(method.lower())
            if operation is None:
                continue
            declared = {str(code): r for code, r in route.responses.items()}
            for code, response in declared.items():
                for media, content in response.get("content", {}).items():
                    if "example" in content:
                        served = operation["responses"][code]["content"][media]
                        served["example"] = content["example"]
            body = (route.openapi_extra or {}).get("requestBody", {})
            for media, content in body.get("content", {}).items():
                if "example" in content:
                    operation["requestBody"]["content"][media]["example"] = content["example"]
    return document


def _json_error(response: dict[str, Any]) -> dict[str, Any]:
    """An ERRORS entry for a route whose own answers are not JSON."""
    schema = {"$ref": f"#/components/schemas/{response['model'].__name__}"}
    return {
        "description": response["description"],
        "content": {"application/json": {"schema": schema}},
    }


def _json_path(loc: Iterable[int | str]) -> str:
    out = "$"
    for part in list(loc)[1:]:  # the first element says body / query / path
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


# The request log: one line per request, at INFO (probes that answer well at DEBUG, server
# errors at WARNING). It names the method, the path, the query with the values of
# secret-named parameters replaced, the status, the duration and the client; never a
# header (Authorization, Cookie), a body or a token.
access = logging.getLogger("app.access")
PROBES = frozenset({f"{API}/healthz", f"{API}/readyz"})
REDACTED = "(redacted)"
_TOKEN = re.compile(r"envp_[A-Za-z0-9_\-]*")  # an API token (app.auth.tokens.PREFIX)


class Redaction:
    """A request's path and query string as the request log shows them."""

    def __init__(self) -> None:
        self.lexicon = KeyLexicon()

    def secret_name(self, name: str) -> bool:
        return name.lower() in QUERY_SECRETS or self.lexicon.is_secret(name)

    def query(self, raw: str) -> str:
        """`raw` with the value of every secret-named parameter (token, key, password,
        signature...) replaced, and tokens anywhere else too."""
        parts = []
        for part in raw.split("&"):
            name, equals, _value = part.partition("=")
            if equals and self.secret_name(unquote_plus(name)):
                part = f"{name}={REDACTED}"
            parts.append(part)
        return self.text("&".join(parts))

    @staticmethod
    def text(text: str) -> str:
        """`text` with envparity tokens and vendors' tokens (AWS keys, Slack, GitHub...)
        replaced, wherever they stand."""
        text = _TOKEN.sub(REDACTED, text)
        spans = sorted(vendor_tokens(text))
        for start, end, _rule in reversed(spans):
            text = text[:start] + REDACTED + text[end:]
        return text


class _Timed:
    """Plain ASGI around the app (no per-request task or body buffering) that hands each
    HTTP request's status and duration to `done`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def send_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            self.done(scope, status[0], time.perf_counter() - started)

    def done(self, scope: Scope, status: int, seconds: float) -> None:
        raise NotImplementedError


class _RequestLog(_Timed):
    """The request log."""

    def __init__(self, app: ASGIApp) -> None:
        super().__init__(app)
        self.redaction = Redaction()

    def done(self, scope: Scope, status: int, seconds: float) -> None:
        self.log(scope, status, seconds * 1000)

    def log(self, scope: Scope, status: int, duration_ms: float) -> None:
        path = scope["path"]
        level = logging.INFO
        if status >= 500:
            level = logging.WARNING
        elif path in PROBES and status < 400:
            level = logging.DEBUG
        if not access.isEnabledFor(level):
            return
        # As it came on the wire (still percent-encoded): a `%0A` in it stays on its line.
        raw: bytes | None = scope.get("raw_path")
        shown = self.redaction.text(raw.decode("latin-1") if raw else quote(path))
        query = self.redaction.query(scope.get("query_string", b"").decode("latin-1"))
        client = scope.get("client")
        host = client[0] if client else None
        method = scope["method"]
        access.log(
            level,
            "%s %s%s %s %.1f ms %s",
            method,
            shown,
            f"?{query}" if query else "",
            status,
            duration_ms,
            host or "-",
            extra={
                "event": "http.request",
                "method": method,
                "path": shown,
                "query": query,
                "status": status,
                "duration_ms": round(duration_ms, 1),
                "client": host,
            },
        )


class _Measure(_Timed):
    """Request latency by route."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        super().__init__(app)
        self.metrics = metrics

    def done(self, scope: Scope, status: int, seconds: float) -> None:
        path = getattr(scope.get("route"), "path", "unmatched")
        self.metrics.requests.labels(scope["method"], path, str(status)).observe(seconds)


# The API reference pages load nothing from elsewhere, whatever their scripts ask for (ReDoc's
# bundle always shows its maker's logo from a CDN): on a closed network a request that leaves
# it fails at best, and is flagged at worst. Inline script and style are the pages' own.
DOCS_PAGES = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc"})
DOCS_POLICY = "default-src 'self' 'unsafe-inline' data: blob:"


class _DocsPolicy:
    """A Content-Security-Policy on the API reference pages, as plain ASGI."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in DOCS_PAGES:
            await self.app(scope, receive, send)
            return

        async def send_policy(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).append("Content-Security-Policy", DOCS_POLICY)
            await send(message)

        await self.app(scope, receive, send_policy)


def create_app(
    config_path: str | Path | None = None,
    *,
    runtime: runtime_mod.Runtime | None = None,
    scheduler: bool = False,
    alerts: bool = False,
) -> FastAPI:
    """The API application; it loads the config and opens the database when it starts.
    `scheduler`: also run the scheduled scans in this process (`envparity serve`);
    `alerts`: also deliver the alert outbox continuously (`envparity serve`)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        rt = runtime or runtime_mod.load(config_path)
        app.state.runtime = rt
        app.state.tokens = TokenCache()
        app.state.gates = GateCache(sides=kept_sides(rt))
        app.state.scans = ThreadPoolExecutor(max_workers=4, thread_name_prefix="envparity-api-scan")
        jobs = None
        if scheduler:
            from app import scheduler as scheduler_mod

            jobs, leadership = scheduler_mod.build(rt)
            jobs.start()
            scheduler_mod.announce(jobs, rt.config)
        delivery = None
        if alerts:
            from app.alerts.deliver import Background, Deliverer

            delivery = Background(
                Deliverer(
                    rt.config,
                    rt.sessions,
                    rt.redactor,
                    on_result=metrics.alert_sent,
                    clock=rt.clock,
                )
            )
            delivery.start()
        try:
            yield
        finally:
            log.info(
                "shutting down: alert delivery, scheduled scans, running API scans",
                extra={"event": "server.stopping"},
            )
            if delivery is not None:
                delivery.close()
            if jobs is not None:
                jobs.shutdown(wait=False)
                leadership.release()
            # Running scans finish (their sources have timeouts); queued ones are dropped.
            app.state.scans.shutdown(wait=True, cancel_futures=True)
            if runtime is None:
                rt.close()
            log.info("stopped", extra={"event": "server.stopped"})

    # /docs (Swagger UI) and /redoc (ReDoc) from assets packaged with the server, not a CDN:
    # the API reference must work on a closed network.
    app = FastAPIOffline(
        title="envparity",
        version=__version__,
        description="Environment drift detection: snapshots, parity reports and the CI gate.",
        lifespan=lifespan,
    )
    metrics = Metrics()
    app.state.metrics = metrics

    app.add_middleware(BodyLimit)
    app.add_middleware(_Measure, metrics=metrics)
    app.add_middleware(_DocsPolicy)
    app.add_middleware(_RequestLog)  # the outermost: it sees every answer, a 413 too

    @app.exception_handler(EnvparityError)
    async def envparity_error(_request: Request, exc: EnvparityError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse(
            status_code=exc.status,
            content={"error": exc.message, "detail": exc.detail},
            headers=headers,
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"path": _json_path(e.get("loc", ())), "message": e.get("msg", "")}
            for e in exc.errors()
        ]
        first = problems[0] if problems else {"path": "$", "message": "invalid"}
        return JSONResponse(
            status_code=422,
            content={"error": f"{first['path']}: {first['message']}", "detail": problems},
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = allowed_methods(request.app.routes, request.scope)
        return JSONResponse(
            status_code=exc.status_code,
            content={"error": exc.detail, "detail": None},
            headers=headers,
        )

    @app.exception_handler(SQLAlchemyError)
    async def database_error(request: Request, exc: SQLAlchemyError) -> JSONResponse:
        reason = _database_reason(exc)
        if _unstorable(exc):
            return JSONResponse(
                status_code=422,
                content={
                    "error": f"the database cannot hold a value of this request: {reason}",
                    "detail": None,
                },
            )
        if not authenticated(request):
            # Before a token was checked (the check itself needs the database): the reason
            # names the database's host and port, which are not for anyone who asks.
            log.warning("database: %s", reason)
            reason = "unavailable"
        return JSONResponse(
            status_code=503, content={"error": f"database: {reason}", "detail": None}
        )

    api = APIRouter(prefix=API)
    api.include_router(snapshots.router)
    api.include_router(scans.router)
    api.include_router(reports.router)
    api.include_router(alerts_api.router)

    @api.get("/healthz", tags=["operations"], response_model=Health)
    def healthz() -> dict[str, str]:
        """The process answers (no auth)."""
        return {"status": "ok"}

    @api.get(
        "/readyz",
        tags=["operations"],
        response_model=Readiness,
        responses={503: {"model": Readiness, "description": "Not ready"}},
    )
    def readyz(runtime: RuntimeDep) -> JSONResponse:
        """The database answers and its schema is at head (no auth, for probes)."""
        try:
            # Bounded: a database that accepts connections and never answers (a silent
            # partition) must make readyz fail in seconds, not hang the probe.
            ping(runtime.engine, READY_TIMEOUT)
            current = migrate.current_revision(runtime.engine)
        except SQLAlchemyError as exc:
            # Open to anyone: why (host, port, user) goes to the server's log only.
            log.warning("readyz: database: %s", _database_reason(exc))
            return JSONResponse(status_code=503, content={"status": "unavailable"})
        head = migrate.head_revision()
        # Behind head: not ready. Ahead (a newer release migrated it during a rolling
        # deploy; migrations add, never remove): ready, and said so.
        ready = current == head or (current is not None and current not in migrate.revisions())
        return JSONResponse(
            status_code=200 if ready else 503,
            content={
                "status": (
                    ("ready" if current == head else "schema ahead")
                    if ready
                    else "migrations pending"
                ),
                "revision": current,
                "head": head,
            },
        )

    @api.get(
        "/metrics",
        tags=["operations"],
        dependencies=[Read],
        response_class=PlainTextResponse,
        responses={
            200: {
                "description": f"The Prometheus text exposition format ({CONTENT_TYPE_LATEST})",
                "content": {
                    "text/plain": {"schema": {"type": "string"}, "example": METRICS_EXAMPLE}
                },
            },
            # Errors are JSON like everywhere else: named by reference, since a `model` here
            # would be documented as the route's text/plain.
            401: _json_error(ERRORS[401]),
            403: _json_error(ERRORS[403]),
        },
    )
    def prometheus(runtime: RuntimeDep) -> Response:
        """Prometheus metrics (a `read` token)."""
        from app.alerts.repository import AlertRepository

        with runtime.sessions.begin() as session:
            alerts = AlertRepository(session)
            metrics.outbox(alerts.counts())
            metrics.open_drift(alerts.current_evaluations())
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    app.include_router(api)
    web.install(app)  # the dashboard: GET / and its pages
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        return restore_examples(generate(), app.routes)

    app.openapi = openapi  # type: ignore[method-assign]
    return app

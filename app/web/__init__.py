"""The dashboard: server-rendered pages over the reports and the gate, with its own assets."""

from __future__ import annotations

import re
from urllib.parse import quote

from fastapi import FastAPI
from starlette.responses import RedirectResponse
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from app.web.fragments import Fragments
from app.web.history import DriftHistory
from app.web.router import router
from app.web.templating import STATIC, Pages

_REPORT = re.compile(r"^/api/v1/comparisons/([^/]+)/([^/]+)/report/?$")


class BrowserReports:
    """The gate's `report_url` (the JSON report endpoint) opened in a browser lands on the
    dashboard's comparison page: a GET that asks for HTML and not JSON is redirected there.
    API clients (`Accept: application/json`, `*/*`) get the JSON as before."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            match = _REPORT.match(scope["path"])
            if match and _wants_html(scope):
                source, target = (quote(part, safe="") for part in match.groups())
                redirect = RedirectResponse(f"/comparisons/{source}/{target}", status_code=303)
                await redirect(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _wants_html(scope: Scope) -> bool:
    accept = next((v for k, v in scope["headers"] if k == b"accept"), b"").decode("latin-1")
    return "text/html" in accept and "application/json" not in accept


def install(app: FastAPI) -> None:
    """Adds the pages, their assets and the report-link redirect to the application."""
    app.state.pages = Pages()
    app.state.drift_history = DriftHistory()
    app.state.fragments = Fragments()
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(BrowserReports)

"""The dashboard's pages (server-rendered HTML): overview, comparison report, environment,
snapshot browser, and the login that turns a token into an HttpOnly cookie."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs, urlencode, urlsplit

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute

from app.api.schemas import MAX_ID
from app.clock import format_duration, utcnow
from app.deps import SESSION_COOKIE, LoginRequired, PageRead, RuntimeDep, token_scope
from app.errors import EnvparityError, NotFound
from app.gate.service import GateCache, gate_config
from app.runtime import Runtime
from app.snapshots.repository import SnapshotRepository
from app.states import OneOf, Severity
from app.web import service, timeline, views
from app.web.fragments import Fragments
from app.web.repository import DashboardRepository
from app.web.templating import Pages
from collectors.base import CATEGORIES, Category

# Pages carry no inline script or style; the browser may load assets from here only.
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
COOKIE_MAX_AGE = 30 * 86400  # the token itself may expire or be revoked sooner
MAX_LOGIN_BODY = 4096  # a token and a `next` path; app.api.limits caps every body anyway
# What a browser says of a request made by a page of this very server, or typed by a person.
OWN_SITE = ("same-origin", "none")


def _here(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def _local(target: str) -> str:
    """Where to go after login: a path on this server only (no open redirect)."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def render(
    request: Request, template: str, status_code: int = 200, /, **context: Any
) -> HTMLResponse:
    runtime: Runtime = request.app.state.runtime
    pages: Pages = request.app.state.pages
    auth = runtime.config.model.server.auth
    html = pages.render(
        template,
        auth=auth,
        signed_in=auth and SESSION_COOKIE in request.cookies,
        environments=list(runtime.config.environments),
        **context,
    )
    return HTMLResponse(html, status_code=status_code)


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    return render(request, "error.html", status, nav="", status=status, message=message)


def _signed_out(request: Request) -> Response:
    """To the login, unless the request came from a link on another site: a SameSite=Strict
    cookie is not sent then, so the page first reloads itself (now a same-site request,
    which carries the cookie of someone signed in); a report link in Slack or a CI log
    opens the page, not the login."""
    here = _here(request)
    if request.method == "GET" and request.headers.get("sec-fetch-site") == "cross-site":
        pages: Pages = request.app.state.pages
        return HTMLResponse(pages.render("hop.html", here=here))
    return RedirectResponse("/login?" + urlencode({"next": here}), status_code=303)


class PageRoute(APIRoute):
    """Errors as HTML pages, a missing or dead session cookie as a redirect to the login,
    and the pages' security headers."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page(request: Request) -> Response:
            response: Response
            try:
                response = await handler(request)
            except LoginRequired:
                response = _signed_out(request)
            except EnvparityError as exc:
                response = error_page(request, exc.status, exc.message)
            except RequestValidationError as exc:
                problems = "; ".join(
                    f"{'.'.join(str(p) for p in e.get('loc', ())[1:])}: {e.get('msg', '')}"
                    for e in exc.errors()
                )
                response = error_page(request, 422, problems or "invalid request")
            response.headers.update(HEADERS)
            return response

        return page


router = APIRouter(route_class=PageRoute, include_in_schema=False)


def _declared(runtime: Runtime, *names: str) -> None:
    for name in names:
        if name not in runtime.config.environments:
            raise NotFound(f"no environment {name!r}")


@router.get("/", dependencies=[PageRead])
def overview(request: Request, runtime: RuntimeDep) -> HTMLResponse:
    now = utcnow()
    gates: GateCache = request.app.state.gates
    pairs = [(c.source, c.target) for c in runtime.config.model.comparisons]
    cells = [
        views.cell(gate, report, now)
        for gate, report in service.comparison_states(runtime, gates, pairs, now)
    ]
    order = list(runtime.config.environments)
    with runtime.sessions.begin() as session:
        repo = SnapshotRepository(session)
        scans = DashboardRepository(session).last_scans()
        latest = repo.latest_of(runtime.config.environments)
        rows = [
            views.EnvironmentRowView(
                name, env.push_only, env.schedule_text, latest.get(name), scans.get(name), now
            )
            for name, env in runtime.config.environments.items()
        ]
        return render(
            request,
            "overview.html",
            nav="overview",
            matrix=views.matrix(order, cells),
            cells=cells,
            rows=rows,
            now=now,
        )


@router.get("/comparisons/{source}/{target}", dependencies=[PageRead])
def comparison(
    request: Request,
    runtime: RuntimeDep,
    source: str,
    target: str,
    category: Category | Literal[""] = "",
    severity: Annotated[Severity | Literal[""], OneOf("", *Severity.worst_first())] = "",
    waived: Literal["", "hide", "only"] = "",
) -> HTMLResponse:
    _declared(runtime, source, target)
    now = utcnow()
    gate, report = service.comparison_state(runtime, request.app.state.gates, source, target, now)
    settings = gate_config(runtime.config, source, target)
    filters = views.Filters(category, severity, waived)
    max_age = None if settings.max_age is None else format_duration(settings.max_age)
    view = views.comparison_view(gate, settings.fail_on, max_age, report, filters, now)
    items = ""
    if report is not None:
        pages: Pages = request.app.state.pages
        fragments: Fragments = request.app.state.fragments
        items = fragments.items(
            report,
            filters,
            lambda: pages.fragment("comparison_items.html", **views.grouped(report, filters)),
        )
    return render(
        request,
        "comparison.html",
        nav="",
        view=view,
        items=items,
        declared=runtime.config.comparison(source, target) is not None,
        all_categories=CATEGORIES,
    )


@router.get("/environments/{name}", dependencies=[PageRead])
def environment(request: Request, runtime: RuntimeDep, name: str) -> HTMLResponse:
    _declared(runtime, name)
    env = runtime.config.environment(name)
    now = utcnow()
    with runtime.sessions.begin() as session:
        repo = SnapshotRepository(session)
        events = service.timeline(
            session, runtime.config, request.app.state.drift_history, name, now
        )
        latest = repo.latest(name)
        baseline = repo.baseline(name)
        return render(
            request,
            "environment.html",
            nav=name,
            name=name,
            env=env,
            events=events,
            chart=timeline.chart(events),
            latest=latest,
            baseline=baseline,
            last_ok=DashboardRepository(session).last_ok(name),
            last_scan=DashboardRepository(session).last_scans().get(name),
            comparisons=[
                c for c in runtime.config.model.comparisons if name in (c.source, c.target)
            ],
            now=now,
        )


@router.get("/snapshots/{snapshot_id}", dependencies=[PageRead])
def snapshot(
    request: Request,
    runtime: RuntimeDep,
    snapshot_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    q: Annotated[str, Query(max_length=200)] = "",
    category: Category | Literal[""] = "",
) -> HTMLResponse:
    with runtime.sessions.begin() as session:
        repo = SnapshotRepository(session)
        found = repo.snapshot(snapshot_id)
        view = views.snapshot_view(found, repo.resources(found), q, category)
        return render(
            request,
            "snapshot.html",
            nav=found.environment.name,
            view=view,
            all_categories=CATEGORIES,
            limit=views.MAX_RESOURCES,
            now=utcnow(),
        )


# ----------------------------------------------------------------------------- login


def cross_site(request: Request, runtime: Runtime) -> bool:
    """A sign-in or sign-out posted by another site's page (login CSRF: a hidden form that
    signs the victim in with the attacker's token, or out).

    Browsers say where a request comes from, and no page can forge it: `Sec-Fetch-Site`
    must be `same-origin` (or `none`: typed, bookmarked); without it, `Origin` must name
    this server, as the request's `Host` or `server.public_url` (behind a proxy that
    rewrites `Host`). A request with neither header is not a browser's (curl, a script):
    it could not carry a victim's cookies either, and passes."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site.lower() not in OWN_SITE
    origin = request.headers.get("origin")
    if origin is None:
        return False
    own = {request.headers.get("host", "").lower()}
    public_url = runtime.config.model.server.public_url
    if public_url:
        own.add(urlsplit(public_url).netloc.lower())
    return origin == "null" or urlsplit(origin).netloc.lower() not in own


def _refused(request: Request, action: str) -> HTMLResponse:
    return error_page(
        request,
        403,
        f"{action} came from another site's page and was refused. "
        "Use the form on this server's own /login page.",
    )


async def _login_form(request: Request) -> dict[str, list[str]] | None:
    """The posted form, read up to MAX_LOGIN_BODY bytes; None if it is larger."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_LOGIN_BODY:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_LOGIN_BODY:
            return None
    return parse_qs(body.decode("utf-8", "replace"))


@router.get("/login")
async def login_form(request: Request, runtime: RuntimeDep, next: str = "/") -> Response:
    """The form; straight on to `next` if auth is off or this browser is signed in."""
    token = request.cookies.get(SESSION_COOKIE)
    if not runtime.config.model.server.auth or (
        token and await token_scope(request, runtime, token) is not None
    ):
        return RedirectResponse(_local(next), status_code=303)
    return render(request, "login.html", nav="", next=_local(next), error=None)


@router.post("/login")
async def login(request: Request, runtime: RuntimeDep) -> Response:
    """A token posted once (a form, not a query string: it stays out of logs and history)."""
    if cross_site(request, runtime):
        return _refused(request, "This sign-in")
    form = await _login_form(request)
    if form is None:
        too_large = error_page(
            request, 413, f"The sign-in form is larger than {MAX_LOGIN_BODY} bytes."
        )
        too_large.headers["Connection"] = "close"  # the rest of the body is not read
        return too_large
    token = (form.get("token") or [""])[0].strip()
    target = _local((form.get("next") or ["/"])[0])
    if not runtime.config.model.server.auth:
        return RedirectResponse(target, status_code=303)
    if not token or await token_scope(request, runtime, token) is None:
        error = "That token is unknown, revoked or expired." if token else "Enter a token."
        return render(request, "login.html", 401, nav="", next=target, error=error)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=COOKIE_MAX_AGE,
        path="/",
        httponly=True,
        samesite="strict",
        # Behind a TLS proxy the request itself may be plain http: public_url tells.
        secure=request.url.scheme == "https"
        or (runtime.config.model.server.public_url or "").startswith("https://"),
    )
    return response


@router.post("/logout")
def logout(request: Request, runtime: RuntimeDep) -> Response:
    if cross_site(request, runtime):
        return _refused(request, "This sign-out")
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response

"""Diffs, comparison reports, the gate and waivers."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from app.api.schemas import ERRORS, GATE_EXAMPLE, MAX_ID, REPORT_EXAMPLE, example, inline_schema
from app.db.base import utcnow
from app.db.models import WaiverRow
from app.deps import Gate, Read, RuntimeDep, SessionDep, Write
from app.diff.model import Waiver
from app.errors import InvalidInput
from app.gate import service as gate_service
from app.reports import render
from app.reports import service as reports
from app.reports.stored import stored_report
from app.snapshots.schemas import load_json
from app.waivers.repository import WaiverRepository, as_waiver
from collectors.base import Category

router = APIRouter(tags=["reports"], responses=ERRORS)


@router.get("/diff", dependencies=[Read], responses={200: example(REPORT_EXAMPLE)})
def diff(left: str, right: str, runtime: RuntimeDep, session: SessionDep) -> Any:
    """Two refs compared: `ENV`, `ENV@baseline`, `ENV@ID` or `ENV@<ISO time>` (a declared
    comparison's latest snapshots: its stored report, while it holds)."""
    now = utcnow()
    stored = stored_report(session.connection(), runtime.config, left, right, now)
    if stored is not None:
        return Response(stored.text, media_type="application/json")
    return reports.compare_refs(session, runtime.config, left, right, now).as_json()


@router.get("/comparisons", dependencies=[Read])
def comparisons(runtime: RuntimeDep) -> list[dict[str, Any]]:
    return [
        {"source": c.source, "target": c.target, "name": c.name, "gate": c.gate.model_dump()}
        for c in runtime.config.model.comparisons
    ]


@router.get(
    "/comparisons/{source}/{target}/report",
    dependencies=[Read],
    responses={200: example(REPORT_EXAMPLE)},
)
def comparison_report(source: str, target: str, runtime: RuntimeDep, session: SessionDep) -> Any:
    """The latest snapshots compared: the report stored by the last evaluation while it
    still holds, else computed now."""
    runtime.config.environment(source)
    runtime.config.environment(target)
    return diff(source, target, runtime, session)


def report_url(runtime: Any, source: str, target: str) -> str:
    base = runtime.config.model.server.public_url or ""
    return f"{base.rstrip('/')}/api/v1/comparisons/{source}/{target}/report"


@router.get(
    "/gate",
    dependencies=[Gate],
    response_model=None,
    responses={
        200: {
            "description": "The answer; 200 whether the gate passes or not: read `status`",
            "content": {
                "application/json": {"example": GATE_EXAMPLE},
                "application/xml": {},
                "text/markdown": {},
            },
        }
    },
)
async def gate(
    source: str,
    target: str,
    runtime: RuntimeDep,
    request: Request,
    format: Literal["json", "junit", "markdown"] = "json",
    category: Annotated[
        list[Category] | None, Query(description="Narrow the gated categories")
    ] = None,
) -> Response:
    """May SOURCE be promoted to TARGET? Judged exactly as `envparity gate`. With
    `format=junit|markdown` the answer is that document, its status in `X-Envparity-Gate`.

    A cached answer costs one small query, made right here: no thread hop, so the tail
    latency of a busy CI stays low; judging afresh runs in the thread pool."""
    cache: gate_service.GateCache = request.app.state.gates
    now = utcnow()
    categories: set[str] | None = {str(c) for c in category} if category else None
    key, result = cache.peek(runtime.sessions, runtime.config, source, target, now, categories)
    if result is None:
        url = report_url(runtime, source, target)
        result = await run_in_threadpool(
            cache.fill, runtime.sessions, runtime.config, source, target, now, key, url, categories
        )
    metrics = request.app.state.metrics
    metrics.gated(source, target, result.status)
    if format == "json":
        return Response(result.json_body, media_type="application/json")
    media = "application/xml" if format == "junit" else "text/markdown"
    return Response(
        render.gate_text(result, format),
        media_type=media,
        headers={"X-Envparity-Gate": result.status},
    )


class WaiverIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1)
    comparison: str | None = None
    category: Category | None = None
    resource_type: str | None = None
    key: str | None = None
    path: str | None = None
    owner: str | None = None
    expires: str | None = Field(default=None, description="ISO date or time (UTC if no offset)")


def waiver_json(waiver: Waiver) -> dict[str, Any]:
    return {
        **waiver.describe(),
        "comparison": waiver.comparison,
        "category": waiver.category,
        "resource_type": waiver.resource_type,
        "key": waiver.key,
        "path": waiver.path,
    }


@router.get("/waivers", dependencies=[Read])
def list_waivers(session: SessionDep) -> list[dict[str, Any]]:
    return [waiver_json(as_waiver(row)) for row in WaiverRepository(session).all()]


async def waiver_body(request: Request, _token: Annotated[None, Write]) -> WaiverIn:
    """The body, read only once the token has been checked (FastAPI reads a declared body
    before any dependency runs) and no larger than server.max_body_kb (BodyLimit)."""
    # Strict JSON, as for a push: a key given twice or a NaN is refused, not half-read.
    data = load_json(await request.body())
    try:
        return WaiverIn.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        ) from None


@router.post(
    "/waivers",
    dependencies=[Write],
    status_code=201,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": inline_schema(WaiverIn.model_json_schema())}
            },
        }
    },
)
def add_waiver(
    body: Annotated[WaiverIn, Depends(waiver_body)], session: SessionDep
) -> dict[str, Any]:
    expires_at = reports.parse_expiry(body.expires, utcnow()) if body.expires else None
    if not body.reason.strip():
        raise InvalidInput("reason must say why the difference is expected")
    row = WaiverRepository(session).add(
        WaiverRow(
            comparison=body.comparison,
            category=body.category,
            resource_type=body.resource_type,
            key=body.key,
            path=body.path,
            reason=body.reason.strip(),
            owner=body.owner,
            expires_at=expires_at,
        )
    )
    return waiver_json(as_waiver(row))


@router.delete("/waivers/{waiver_id}", dependencies=[Write], status_code=204)
def delete_waiver(waiver_id: Annotated[int, Path(ge=1, le=MAX_ID)], session: SessionDep) -> None:
    WaiverRepository(session).remove(waiver_id)

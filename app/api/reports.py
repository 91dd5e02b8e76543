"""Diffs, comparison reports, the gate and waivers."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.concurrency import run_in_threadpool

from app.api.openapi import GATE_EXAMPLE, REPORT_EXAMPLE, answer, inline_schema, link
from app.api.schemas import (
    ERRORS,
    MAX_ID,
    NO_NUL,
    ComparisonOut,
    GateAnswer,
    ReportOut,
    WaiverOut,
    refuse_nul,
)
from app.clock import utcnow
from app.deps import Gate, Read, RuntimeDep, SessionDep, Write
from app.diff.model import Waiver
from app.gate import service as gate_service
from app.reports import render
from app.reports import service as reports
from app.reports.model import labelled
from app.reports.stored import stored_report
from app.runtime import Runtime
from app.snapshots.schemas import load_json
from app.waivers import service as waivers
from app.waivers.repository import WaiverRepository, as_waiver
from collectors.base import Category

router = APIRouter(tags=["reports"], responses=ERRORS)


REPORT = answer(
    ReportOut,
    "The report; a stored one is served as it was stored",
    content={"application/json": {"example": REPORT_EXAMPLE}},
)


# A stored report is returned as its stored text (a Response, not re-validated); one computed
# now is checked against ReportOut.
@router.get("/diff", dependencies=[Read], response_model=ReportOut, responses={200: REPORT})
def diff(
    left: str, right: str, runtime: RuntimeDep, session: SessionDep
) -> Response | dict[str, Any]:
    """Two refs compared: `ENV`, `ENV@baseline`, `ENV@ID` or `ENV@<ISO time>` (a declared
    comparison's latest snapshots: its stored report, while it holds)."""
    now = utcnow()
    stored = stored_report(session.connection(), runtime.config, left, right, now)
    if stored is not None:
        return Response(stored.text, media_type="application/json")
    report = reports.compare_refs(session, runtime.config, left, right, now)
    return labelled(report, left, right).as_json()  # over time: `production@baseline`


@router.get(
    "/comparisons",
    dependencies=[Read],
    response_model=list[ComparisonOut],
    responses={
        200: answer(
            list[ComparisonOut],
            links={
                "report": link(
                    "GET /comparisons/{source}/{target}/report",
                    "The first comparison's report",
                    source="$response.body#/0/source",
                    target="$response.body#/0/target",
                ),
                "gate": link(
                    "GET /gate",
                    "The first comparison's gate",
                    source="$response.body#/0/source",
                    target="$response.body#/0/target",
                ),
            },
        )
    },
)
def comparisons(runtime: RuntimeDep) -> list[dict[str, Any]]:
    return [
        {"source": c.source, "target": c.target, "name": c.name, "gate": c.gate.model_dump()}
        for c in runtime.config.model.comparisons
    ]


@router.get(
    "/comparisons/{source}/{target}/report",
    dependencies=[Read],
    response_model=ReportOut,
    responses={200: REPORT},
)
def comparison_report(
    source: str, target: str, runtime: RuntimeDep, session: SessionDep
) -> Response | dict[str, Any]:
    """The latest snapshots compared: the report stored by the last evaluation while it
    still holds, else computed now."""
    runtime.config.environment(source)
    runtime.config.environment(target)
    return diff(source, target, runtime, session)


def report_url(runtime: Runtime, source: str, target: str) -> str:
    base = runtime.config.model.server.public_url or ""
    return f"{base.rstrip('/')}/api/v1/comparisons/{source}/{target}/report"


@router.get(
    "/gate",
    dependencies=[Gate],
    # The answer is prebuilt JSON bytes (cached): documented by GateAnswer, never re-validated.
    response_model=None,
    responses={
        200: answer(
            GateAnswer,
            "The answer; 200 whether the gate passes or not: read `status` (with "
            "`format=junit|markdown`, that document; the status in `X-Envparity-Gate`)",
            content={
                "application/json": {"example": GATE_EXAMPLE},
                "application/xml": {"schema": {"type": "string"}},
                "text/markdown": {"schema": {"type": "string"}},
            },
        )
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
    """A waiver to store. Its strings are what the waivers table holds on every database: no
    NUL character (PostgreSQL refuses one), none longer than its column (the rule of
    app.waivers.service.unstorable, declared here for the schema and the 422's paths)."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(
        min_length=1,
        description="Why the difference is expected (not blank)",
        json_schema_extra=NO_NUL,
    )
    comparison: str | None = Field(
        default=None, max_length=waivers.MAX_LENGTH["comparison"], json_schema_extra=NO_NUL
    )
    category: Category | None = None
    resource_type: str | None = Field(
        default=None, max_length=waivers.MAX_LENGTH["resource_type"], json_schema_extra=NO_NUL
    )
    key: str | None = Field(default=None, json_schema_extra=NO_NUL)
    path: str | None = Field(default=None, json_schema_extra=NO_NUL)
    owner: str | None = Field(
        default=None, max_length=waivers.MAX_LENGTH["owner"], json_schema_extra=NO_NUL
    )
    expires: str | None = Field(
        default=None,
        description="ISO date or time (UTC if no offset), after now",
        json_schema_extra=NO_NUL,
    )

    _storable = field_validator("*", mode="before")(refuse_nul)

    @field_validator("expires")
    @classmethod
    def _expressible(cls, value: str | None) -> str | None:
        """A time that leaves the years 1-9999 once turned to UTC (0001-01-01T00:00+14:00)
        names no moment that can be stored or shown. Anything else wrong with it (not a
        time, not after now) the waiver service says, as for `envparity waiver add`."""
        problem = waivers.unstorable("expires", value)
        if problem is not None:
            raise ValueError(problem)
        return value


def waiver_json(waiver: Waiver) -> dict[str, Any]:
    return {
        **waiver.describe(),
        "comparison": waiver.comparison,
        "category": waiver.category,
        "resource_type": waiver.resource_type,
        "key": waiver.key,
        "path": waiver.path,
    }


WAIVER_LINKS = {
    "delete": link(
        "DELETE /waivers/{waiver_id}", "Removes the waiver", waiver_id="$response.body#/id"
    ),
}


@router.get("/waivers", dependencies=[Read], response_model=list[WaiverOut])
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
    response_model=WaiverOut,
    responses={201: answer(WaiverOut, "Stored", links=WAIVER_LINKS)},
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
    request = waivers.WaiverRequest(**body.model_dump())
    return waiver_json(waivers.add_waiver(session, request, utcnow()))


@router.delete("/waivers/{waiver_id}", dependencies=[Write], status_code=204)
def delete_waiver(waiver_id: Annotated[int, Path(ge=1, le=MAX_ID)], session: SessionDep) -> None:
    WaiverRepository(session).remove(waiver_id)

"""The shapes the API answers with: every operation's success body, and the error bodies.

A route that returns data declares its model as `response_model`: FastAPI checks every
answer against it and writes it with pydantic's serializer (as it did before the models,
from the routes' `dict` annotations). A route that returns a prebuilt `Response` (the gate's
cached bytes, a stored report, a 201 or 202 built by hand) names its model in `responses=`:
FastAPI does not re-validate a returned Response. The tests (tests/api/test_schemathesis.py)
hold every answer to its declared schema either way. The links from one answer to another
operation, the `responses=` entries and the examples are in app.api.openapi."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.db.types import MAX_ID as MAX_ID  # the routers take it from here
from app.states import (
    Change,
    DeliveryStatus,
    EventKind,
    GateStatus,
    ScanStatus,
    ScanTrigger,
    Severity,
    SideName,
    SnapshotOrigin,
    SnapshotStatus,
    SourceStatus,
    WaiverOrigin,
)
from collectors.base import Category

API = "/api/v1"

# Every time in a body: ISO 8601 in UTC with a Z (app.clock.format_time).
Time = Annotated[str, Field(json_schema_extra={"format": "date-time"})]


def refuse_nul(value: object) -> object:
    """A string field's `mode="before"` validator: no NUL character, which PostgreSQL refuses
    to store (and SQLite would keep). Before the field's own validation, so that its
    constraints (max_length...) keep their usual messages."""
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("holds a NUL character, which no database column holds")
    return value


# What refuse_nul means in a JSON schema.
NO_NUL: dict[str, Any] = {"pattern": "^[^\\x00]*$"}


class Body(BaseModel):
    """Every body the API answers with: exactly these fields, no other
    (`additionalProperties: false` in the OpenAPI document)."""

    model_config = ConfigDict(extra="forbid")


class Problem(Body):
    path: str
    message: str


class InvalidBody(Body):
    """A 422: what was refused, with the JSON path of each problem; nothing was stored."""

    error: str
    detail: list[Problem] | None = None


class ErrorBody(Body):
    """Any other error: a message a person can act on, and details where there are some."""

    error: str
    detail: Any = None


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Not possible with this config"},
    401: {"model": ErrorBody, "description": "No token, or an unknown, revoked or expired one"},
    403: {"model": ErrorBody, "description": "The token's scope is too small"},
    404: {"model": ErrorBody, "description": "No such thing"},
    413: {
        "model": ErrorBody,
        "description": "The body is larger than server.max_body_kb (server.max_push_mb for a "
        "push); it was not read",
    },
    422: {"model": InvalidBody, "description": "Refused whole; nothing stored"},
}


class ScanStarted(Body):
    """A scan's id: the one just started, or the one that was already running."""

    scan_id: int
    already_running: bool


class ScanOut(Body):
    """A scan, as `GET /scans/{id}` answers it."""

    id: int
    environment: str
    status: ScanStatus
    trigger: ScanTrigger
    started_at: Time
    finished_at: Time | None
    snapshot_id: int | None
    error: str | None


# --------------------------------------------------------------------------- environments


class SourceRef(Body):
    """A source declared in the config."""

    name: str
    type: str


class SnapshotSourceOut(Body):
    """What one source of a snapshot did."""

    name: str
    type: str
    status: SourceStatus
    error: str | None
    duration_ms: int | None = Field(description="None for a pushed source")
    resource_count: int


class SnapshotOut(Body):
    """A stored snapshot, without its resources (`GET /snapshots/{id}/resources`)."""

    id: int
    environment: str
    taken_at: Time
    status: SnapshotStatus
    origin: SnapshotOrigin
    resource_count: int
    sources: list[SnapshotSourceOut]


class EnvironmentOut(Body):
    """A declared environment with its latest snapshot."""

    name: str
    vars: dict[str, str]
    schedule: str | None
    push_only: bool = Field(description="No sources: its snapshots arrive by push only")
    sources: list[SourceRef]
    latest_snapshot: SnapshotOut | None
    baseline_snapshot_id: int | None


class PushStored(Body):
    """The snapshot a push stored."""

    snapshot_id: int
    environment: str
    status: SnapshotStatus


class ResourceOut(Body):
    """One stored resource: its attributes as stored (secrets as their markers)."""

    source: str
    category: Category
    resource_type: str
    key: str
    attributes: dict[str, Any]


# --------------------------------------------------------------------------- reports


class SnapshotRef(Body):
    """One side of a comparison."""

    environment: str
    snapshot_id: int
    taken_at: Time
    status: SnapshotStatus
    label: str | None = Field(default=None, description="What the report calls this side")


class SeverityCounts(Body):
    critical: int
    warning: int
    info: int


class ReportSummary(Body):
    """The counts of a report; `items` leaves the tolerated out, `unwaived` is what counts."""

    items: int
    unwaived: int
    tolerated: int
    by_severity: SeverityCounts
    by_category: dict[Category, int] = Field(description="Categories with listed items only")
    parity: float = Field(
        ge=0, le=1, description="Share of compared resources with no unwaived drift"
    )
    compared: int
    unknown_sources: int


class UnknownSource(Body):
    """A source that failed on one side: its resources could not be compared."""

    side: SideName
    environment: str
    source: str
    error: str | None
    resources: int = Field(description="Resources on the other side that went uncompared")


class WaiverRef(Body):
    """The waiver (a config `ignore:` rule or a stored one) that covers a drift item."""

    id: int | None = Field(description="None for the config's ignore rules")
    origin: WaiverOrigin
    reason: str
    owner: str | None
    expires: Time | None


class DriftItemOut(Body):
    """One difference between the two sides."""

    category: Category
    resource_type: str
    key: str
    path: str
    change: Change
    left: Any = Field(description="The left side's value (null when absent)")
    right: Any = Field(description="The right side's value (null when absent)")
    severity: Severity
    waived: bool
    waiver: WaiverRef | None
    tolerated: bool
    tolerance: str | None
    detail: str | None
    first_seen: Time | None
    fingerprint: str


class ReportOut(Body):
    """Two snapshots compared (`envparity diff --format json`)."""

    comparison: str
    left: SnapshotRef
    right: SnapshotRef
    summary: ReportSummary
    unknown: list[UnknownSource]
    items: list[DriftItemOut]


class GateRule(Body):
    """A comparison's gate, as the config declares it (defaults filled in)."""

    fail_on: Severity
    max_age: str | None
    categories: list[Category]


class ComparisonOut(Body):
    source: str
    target: str
    name: str
    gate: GateRule


class NoSummary(Body):
    """No report was made (the gate's status is `missing` or `stale`): an empty object."""


class GateAnswer(Body):
    """May SOURCE be promoted to TARGET; `pass` is true only with `status: pass`."""

    passed: bool = Field(alias="pass")
    status: GateStatus
    source: str
    target: str
    reasons: list[str]
    summary: ReportSummary | NoSummary
    failing: list[DriftItemOut] = Field(description="The drift that fails the gate")
    report_url: str | None


class WaiverOut(Body):
    """A stored waiver."""

    id: int
    origin: WaiverOrigin
    reason: str
    owner: str | None
    expires: Time | None
    comparison: str | None
    category: Category | None
    resource_type: str | None
    key: str | None
    path: str | None


# --------------------------------------------------------------------------- alerts, operations


class AlertEventOut(Body):
    """One outbox event: a message for one target."""

    id: int
    comparison: str
    event: EventKind
    target: str = Field(description="`slack` or `webhook:NAME`")
    items: int
    status: DeliveryStatus
    attempts: int
    last_error: str | None
    created_at: Time
    next_attempt_at: Time | None = Field(description="Set while the event is pending")
    delivered_at: Time | None


class Health(Body):
    status: Literal["ok"]


class Readiness(Body):
    """`ready` (or `schema ahead`) with 200; `migrations pending` or `unavailable` with 503.
    The revisions are the database's and the code's; `unavailable` names neither."""

    status: Literal["ready", "schema ahead", "migrations pending", "unavailable"]
    revision: str | None = None
    head: str | None = None

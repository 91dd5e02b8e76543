"""The shapes the API answers with: every operation's success body, and the error bodies.

A route that returns data declares its model as `response_model`: FastAPI checks every
answer against it and writes it with pydantic's serializer (as it did before the models,
from the routes' `dict` annotations). A route that returns a prebuilt `Response` (the gate's
cached bytes, a stored report, a 201 or 202 built by hand) names its model in `responses=`:
FastAPI does not re-validate a returned Response. The tests (tests/api/test_schemathesis.py)
hold every answer to its declared schema either way. Where one answer leads to another
operation, `link()` says so (OpenAPI links)."""

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


PUSH_EXAMPLE = {
    "taken_at": "2026-11-22T04:00:00Z",
    "sources": [{"name": "host-agent", "type": "push", "status": "ok", "error": None}],
    "resources": [
        {
            "source": "host-agent",
            "category": "packages",
            "resource_type": "pip",
            "key": "requests",
            "attributes": {"version": "2.32.3"},
        }
    ],
}

GATE_EXAMPLE = {
    "pass": False,
    "status": "fail",
    "source": "staging",
    "target": "production",
    "reasons": ["1 unwaived drift item(s) at or above warning between staging and production"],
    "summary": {
        "items": 1,
        "unwaived": 1,
        "tolerated": 0,
        "by_severity": {"critical": 0, "warning": 1, "info": 0},
        "by_category": {"config": 1},
        "parity": 0.5,
        "compared": 2,
        "unknown_sources": 0,
    },
    "failing": [
        {
            "category": "config",
            "resource_type": "file",
            "key": "deploy/{env}/app.yaml",
            "path": "database.pool_size",
            "change": "changed",
            "left": 10,
            "right": 20,
            "severity": "warning",
            "waived": False,
            "waiver": None,
            "tolerated": False,
            "tolerance": None,
            "detail": None,
            "first_seen": "2026-11-22T04:00:00Z",
            "fingerprint": "5c1e0b7f3d2a9e8c4b6a1f0d",
        }
    ],
    "report_url": "https://envparity.internal/api/v1/comparisons/staging/production/report",
}


def example(value: object, description: str = "OK") -> dict[str, object]:
    return {"description": description, "content": {"application/json": {"example": value}}}


def inline_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A pydantic JSON schema with its `$defs` substituted in place: embedded in the OpenAPI
    document, `#/$defs/...` references would resolve against the document, not the schema."""
    definitions = schema.get("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return walk(definitions[ref.removeprefix("#/$defs/")])
            return {k: walk(v) for k, v in node.items() if k != "$defs"}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    result: dict[str, Any] = walk(schema)
    return result


REPORT_EXAMPLE = {
    "comparison": "staging->production",
    "left": {
        "environment": "staging",
        "snapshot_id": 12,
        "taken_at": "2026-11-22T04:00:00Z",
        "status": "complete",
    },
    "right": {
        "environment": "production",
        "snapshot_id": 13,
        "taken_at": "2026-11-22T04:00:05Z",
        "status": "complete",
    },
    "summary": {
        "items": 1,
        "unwaived": 1,
        "tolerated": 0,
        "by_severity": {"critical": 1, "warning": 0, "info": 0},
        "by_category": {"network": 1},
        "parity": 0.97,
        "compared": 31,
        "unknown_sources": 0,
    },
    "unknown": [],
    "items": [
        {
            "category": "network",
            "resource_type": "aws.ec2.security_group",
            "key": "web-{env}",
            "path": "ingress[tcp/22 from 0.0.0.0/0]",
            "change": "added",
            "left": None,
            "right": {
                "label": "tcp/22 from 0.0.0.0/0",
                "protocol": "tcp",
                "ports": "22",
                "cidr": "0.0.0.0/0",
            },
            "severity": "critical",
            "waived": False,
            "waiver": None,
            "tolerated": False,
            "tolerance": None,
            "detail": None,
            "first_seen": "2026-11-21T23:15:00Z",
            "fingerprint": "9f2c0b7f3d2a9e8c4b6a1f0d",
        }
    ],
}

SCAN_EXAMPLE = {
    "id": 7,
    "environment": "staging",
    "status": "complete",
    "trigger": "api",
    "started_at": "2026-11-22T04:00:00Z",
    "finished_at": "2026-11-22T04:00:03Z",
    "snapshot_id": 12,
    "error": None,
}


def link(operation: str, description: str, **parameters: str) -> dict[str, Any]:
    """An OpenAPI link: `operation` ("GET /snapshots/{snapshot_id}", a path under /api/v1)
    called with parameters taken from this answer (runtime expressions such as
    `$response.body#/id`). Clients and schemathesis's stateful phase follow them."""
    method, path = operation.split(" ", 1)
    pointer = (API + path).replace("~", "~0").replace("/", "~1")
    return {
        "operationRef": f"#/paths/{pointer}/{method.lower()}",
        "parameters": parameters,
        "description": description,
    }


def answer(
    model: Any, description: str = "OK", *, links: dict[str, Any] | None = None, **more: Any
) -> dict[str, Any]:
    """A `responses=` entry: the body's model, and the links from it."""
    entry: dict[str, Any] = {"model": model, "description": description, **more}
    if links:
        entry["links"] = links
    return entry

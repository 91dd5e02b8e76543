"""Shapes the API documents for its error answers (the success bodies are documented per route)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from app.db.types import MAX_ID as MAX_ID  # the routers take it from here


class Problem(BaseModel):
    path: str
    message: str


class InvalidBody(BaseModel):
    """A 422: what was refused, with the JSON path of each problem; nothing was stored."""

    error: str
    detail: list[Problem] | None = None


class ErrorBody(BaseModel):
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


class ScanStarted(BaseModel):
    """A scan's id: the one just started, or the one that was already running."""

    scan_id: int
    already_running: bool


class ScanOut(BaseModel):
    """A scan, as `GET /scans/{id}` answers it."""

    id: int
    environment: str
    status: str  # running, complete, partial, failed, abandoned
    trigger: str
    started_at: str
    finished_at: str | None
    snapshot_id: int | None
    error: str | None


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

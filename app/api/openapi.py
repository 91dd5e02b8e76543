"""What the OpenAPI document says beyond the models (app.api.schemas): the `responses=`
entries with their links (`answer()`, `link()`: where one answer leads to another operation),
a request body's schema inlined (`inline_schema()`), and the examples, real answers in the
models' shapes, nulls included (app.main restores the nulls FastAPI drops)."""

from __future__ import annotations

from typing import Any

from app.api.schemas import API


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

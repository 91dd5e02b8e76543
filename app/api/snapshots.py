"""Environments, snapshots and push ingestion (their scans: app.api.scans)."""

from __future__ import annotations

import tempfile
from typing import Annotated, Any, BinaryIO, cast

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from app.alerts.evaluate import Evaluator
from app.api.openapi import PUSH_EXAMPLE, answer, inline_schema, link
from app.api.schemas import (
    ERRORS,
    MAX_ID,
    EnvironmentOut,
    ErrorBody,
    PushStored,
    ResourceOut,
    SnapshotOut,
)
from app.clock import format_time
from app.db.models import Snapshot
from app.deps import Read, RuntimeDep, SessionDep, Write
from app.errors import InvalidInput, NotFound
from app.runtime import Runtime
from app.snapshots import service
from app.snapshots.repository import SnapshotRepository
from app.snapshots.schemas import PushDocument
from collectors.base import CATEGORIES

SPOOL_IN_MEMORY = 1 << 20  # a push body larger than this waits on disk until it is read

router = APIRouter(tags=["environments"], responses=ERRORS)


def snapshot_json(snapshot: Snapshot) -> dict[str, Any]:
    return {
        "id": snapshot.id,
        "environment": snapshot.environment.name,
        "taken_at": format_time(snapshot.taken_at),
        "status": snapshot.status,
        "origin": snapshot.origin,
        "resource_count": snapshot.resource_count,
        "sources": [
            {
                "name": s.name,
                "type": s.type,
                "status": s.status,
                "error": s.error,
                "duration_ms": s.duration_ms,
                "resource_count": s.resource_count,
            }
            for s in snapshot.sources
        ],
    }


# Where an answer leads: OpenAPI links, followed by clients and schemathesis's stateful phase.
ENVIRONMENT_LINKS = {
    "snapshots": link(
        "GET /environments/{name}/snapshots",
        "The environment's snapshots",
        name="$response.body#/name",
    ),
    "scan": link(
        "POST /environments/{name}/scans",
        "Scans the environment (one with sources)",
        name="$response.body#/name",
    ),
    "push": link(
        "POST /environments/{name}/snapshots",
        "Pushes a snapshot of the environment",
        name="$response.body#/name",
    ),
}
SNAPSHOT_LINKS = {
    "resources": link(
        "GET /snapshots/{snapshot_id}/resources",
        "The snapshot's resources",
        snapshot_id="$response.body#/id",
    ),
    "environment": link(
        "GET /environments/{name}",
        "The snapshot's environment",
        name="$response.body#/environment",
    ),
}


@router.get(
    "/environments",
    dependencies=[Read],
    response_model=list[EnvironmentOut],
    responses={
        200: answer(
            list[EnvironmentOut],
            links={
                "environment": link(
                    "GET /environments/{name}",
                    "The first environment listed",
                    name="$response.body#/0/name",
                ),
            },
        )
    },
)
def list_environments(runtime: RuntimeDep, session: SessionDep) -> list[dict[str, Any]]:
    """Every declared environment with its latest snapshot."""
    repo = SnapshotRepository(session)
    return [
        environment_json(repo, env.name, runtime) for env in runtime.config.environments.values()
    ]


def environment_json(repo: SnapshotRepository, name: str, runtime: Runtime) -> dict[str, Any]:
    env = runtime.config.environment(name)
    latest = repo.latest(name)
    baseline = repo.baseline(name)
    return {
        "name": name,
        "vars": env.vars,
        "schedule": env.schedule_text,
        "push_only": env.push_only,
        "sources": [{"name": s.name, "type": s.type} for s in env.sources],
        "latest_snapshot": snapshot_json(latest) if latest else None,
        "baseline_snapshot_id": baseline.id if baseline else None,
    }


@router.get(
    "/environments/{name}",
    dependencies=[Read],
    response_model=EnvironmentOut,
    responses={200: answer(EnvironmentOut, links=ENVIRONMENT_LINKS)},
)
def get_environment(name: str, runtime: RuntimeDep, session: SessionDep) -> dict[str, Any]:
    if name not in runtime.config.environments:
        raise NotFound(f"no environment {name!r}")
    return environment_json(SnapshotRepository(session), name, runtime)


@router.get(
    "/environments/{name}/snapshots",
    dependencies=[Read],
    response_model=list[SnapshotOut],
    responses={
        200: answer(
            list[SnapshotOut],
            links={
                "latest": link(
                    "GET /snapshots/{snapshot_id}",
                    "The newest snapshot listed",
                    snapshot_id="$response.body#/0/id",
                ),
            },
        )
    },
)
def list_snapshots(
    name: str,
    runtime: RuntimeDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[dict[str, Any]]:
    if name not in runtime.config.environments:
        raise NotFound(f"no environment {name!r}")
    return [snapshot_json(s) for s in SnapshotRepository(session).list_snapshots(name, limit)]


@router.post(
    "/environments/{name}/snapshots",
    dependencies=[Write],
    status_code=201,
    response_model=None,
    responses={
        201: answer(
            PushStored,
            "Stored",
            content={
                "application/json": {
                    "example": {"snapshot_id": 12, "environment": "fleet", "status": "complete"}
                }
            },
            links={
                "snapshot": link(
                    "GET /snapshots/{snapshot_id}",
                    "The stored snapshot",
                    snapshot_id="$response.body#/snapshot_id",
                ),
                "resources": link(
                    "GET /snapshots/{snapshot_id}/resources",
                    "The stored snapshot's resources",
                    snapshot_id="$response.body#/snapshot_id",
                ),
                "snapshots": link(
                    "GET /environments/{name}/snapshots",
                    "The environment's snapshots",
                    name="$response.body#/environment",
                ),
            },
        ),
        413: {"model": ErrorBody, "description": "Larger than server.max_push_mb"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": inline_schema(PushDocument.model_json_schema()),
                    "example": PUSH_EXAMPLE,
                }
            },
        }
    },
)
async def push_snapshot(name: str, request: Request, runtime: RuntimeDep) -> JSONResponse:
    """Push ingestion (the push format); a malformed document is refused whole with a 422."""
    # The token was checked first (the dependency); app.api.limits.BodyLimit stops the read
    # past server.max_push_mb with a 413. The body goes to a temporary file as it arrives
    # (in memory while small), and is read from there resource by resource.
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY) as body:
        async for chunk in request.stream():
            body.write(chunk)
        body.seek(0)

        def store() -> tuple[int, str]:
            # Parsed here, in the thread pool: the event loop gets its turn while a 50 MB
            # document is read (healthz stays prompt). Decoded as the CLI reads a file:
            # UTF-8, or what a byte order mark says.
            with runtime.sessions.begin() as session:
                stored = service.push_stream(
                    session, runtime.config, name, cast(BinaryIO, body), runtime.redactor
                )
            Evaluator.of(runtime).after_snapshot(name)
            return stored

        snapshot_id, status = await run_in_threadpool(store)
    return JSONResponse(
        status_code=201,
        content={"snapshot_id": snapshot_id, "environment": name, "status": status},
    )


@router.get(
    "/snapshots/{snapshot_id}",
    dependencies=[Read],
    response_model=SnapshotOut,
    responses={200: answer(SnapshotOut, links=SNAPSHOT_LINKS)},
)
def get_snapshot(
    snapshot_id: Annotated[int, Path(ge=1, le=MAX_ID)], session: SessionDep
) -> dict[str, Any]:
    return snapshot_json(SnapshotRepository(session).snapshot(snapshot_id))


@router.get(
    "/snapshots/{snapshot_id}/resources",
    dependencies=[Read],
    response_model=list[ResourceOut],
)
def get_resources(
    snapshot_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    session: SessionDep,
    category: Annotated[str | None, Query(json_schema_extra={"enum": [*CATEGORIES, None]})] = None,
) -> list[dict[str, Any]]:
    if category is not None and category not in CATEGORIES:
        raise InvalidInput(f"category must be one of {', '.join(CATEGORIES)}")
    repo = SnapshotRepository(session)
    snapshot = repo.snapshot(snapshot_id)
    return [
        {
            "source": source,
            "category": r.category,
            "resource_type": r.resource_type,
            "key": r.key,
            "attributes": r.attributes,
        }
        for source, resources in repo.resources(snapshot).items()
        for r in resources
        if category is None or r.category == category
    ]

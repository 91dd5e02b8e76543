"""Scans: one started (and, with `wait=true`, waited for), one looked up."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import Future
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from app.alerts.evaluate import evaluating_scanner
from app.api.openapi import SCAN_EXAMPLE, answer, link
from app.api.schemas import ERRORS, MAX_ID, ScanOut, ScanStarted
from app.clock import format_time
from app.db.models import Scan
from app.deps import Read, RuntimeDep, SessionDep, Write
from app.errors import ScanInProgress
from app.runtime import Runtime
from app.snapshots.repository import SnapshotRepository
from app.states import ScanStatus, ScanTrigger

# Listed with the environments in the API reference: a scan is of one, started from it.
router = APIRouter(tags=["environments"], responses=ERRORS)


def scan_json(scan: Scan) -> dict[str, Any]:
    return {
        "id": scan.id,
        "environment": scan.environment.name,
        "status": scan.status,
        "trigger": scan.trigger,
        "started_at": format_time(scan.started_at),
        "finished_at": format_time(scan.finished_at) if scan.finished_at else None,
        "snapshot_id": scan.snapshot_id,
        "error": scan.error,
    }


@router.post(
    "/environments/{name}/scans",
    dependencies=[Write],
    status_code=202,
    response_model=None,
    responses={
        202: answer(
            ScanStarted,
            "A scan was started (or, with `wait=true`, had not finished by `timeout`)",
            links={
                "scan": link("GET /scans/{scan_id}", "The scan", scan_id="$response.body#/scan_id"),
            },
        ),
        200: answer(
            ScanOut | ScanStarted,
            "With `wait=true`, the finished scan; otherwise the id of the scan of this "
            "environment that was already running (`already_running: true`)",
        ),
    },
)
async def start_scan(
    name: str,
    runtime: RuntimeDep,
    request: Request,
    wait: bool = False,
    timeout: Annotated[float, Query(gt=0, le=3600)] = 600,
) -> JSONResponse:
    """Starts a scan (202), or answers the running one's id; `wait=true` waits until it is
    done, without holding a worker thread."""
    scanner = evaluating_scanner(runtime)
    try:
        scan_id = await run_in_threadpool(scanner.start, name, trigger=ScanTrigger.API)
    except ScanInProgress as exc:
        if not wait:
            return JSONResponse(
                status_code=200, content={"scan_id": exc.scan_id, "already_running": True}
            )
        return await _when_done(runtime, exc.scan_id, timeout, None)
    metrics = request.app.state.metrics

    def run() -> None:
        started = time.monotonic()
        result = scanner.run(name, scan_id)
        metrics.scanned(result, time.monotonic() - started)

    finished = request.app.state.scans.submit(run)
    if not wait:
        return JSONResponse(status_code=202, content={"scan_id": scan_id, "already_running": False})
    return await _when_done(runtime, scan_id, timeout, finished)


# How often a waiting request looks at a scan it did not start (another request's, the CLI's,
# another server's): a short query in the thread pool each time.
POLL_SECONDS = 0.5


async def _when_done(
    runtime: Runtime, scan_id: int, timeout: float, finished: Future[None] | None
) -> JSONResponse:
    """The scan once it has finished (200), or its id if still running at `timeout` (202).

    The wait is asynchronous: no worker thread sleeps in it, so any number of waiting
    requests leave the thread pool (and healthz, and every sync route) free. A scan this
    request started wakes it when its worker ends (`finished`); another is polled."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    done = asyncio.wrap_future(finished) if finished is not None else None
    while True:
        scan = await run_in_threadpool(_finished_scan, runtime, scan_id)
        if scan is not None:
            return JSONResponse(status_code=200, content=scan)
        remaining = deadline - loop.time()
        if remaining <= 0:
            return JSONResponse(
                status_code=202,
                content={"scan_id": scan_id, "already_running": finished is None},
            )
        if done is not None and not done.done():
            await asyncio.wait({done}, timeout=remaining)
            if done.done() and not done.cancelled():
                done.exception()  # seen; the scan's own row says what went wrong
        else:
            await asyncio.sleep(min(POLL_SECONDS, remaining))


def _finished_scan(runtime: Runtime, scan_id: int) -> dict[str, Any] | None:
    with runtime.sessions.begin() as session:
        scan = SnapshotRepository(session).scan(scan_id)
        return None if scan.status == ScanStatus.RUNNING else scan_json(scan)


@router.get(
    "/scans/{scan_id}",
    dependencies=[Read],
    response_model=ScanOut,
    responses={
        200: answer(
            ScanOut,
            content={"application/json": {"example": SCAN_EXAMPLE}},
            links={
                "snapshot": link(
                    "GET /snapshots/{snapshot_id}",
                    "The snapshot the scan stored (none while it runs or when it failed)",
                    snapshot_id="$response.body#/snapshot_id",
                ),
                "environment": link(
                    "GET /environments/{name}",
                    "The scanned environment",
                    name="$response.body#/environment",
                ),
            },
        )
    },
)
def get_scan(scan_id: Annotated[int, Path(ge=1, le=MAX_ID)], session: SessionDep) -> dict[str, Any]:
    return scan_json(SnapshotRepository(session).scan(scan_id))

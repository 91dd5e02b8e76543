"""The alert outbox: what was sent, what waits, what failed (and retrying a failed one)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from app.alerts.repository import AlertRepository
from app.api.openapi import answer, link
from app.api.schemas import ERRORS, MAX_ID, AlertEventOut
from app.clock import format_time, utcnow
from app.db.models import AlertEvent
from app.deps import Read, SessionDep, Write
from app.states import DeliveryStatus

router = APIRouter(tags=["alerts"], responses=ERRORS)


def event_json(event: AlertEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "comparison": event.comparison,
        "event": event.kind,
        "target": event.target,
        "items": event.items,
        "status": event.status,
        "attempts": event.attempts,
        "last_error": event.last_error,
        "created_at": format_time(event.created_at),
        "next_attempt_at": format_time(event.next_attempt_at)
        if event.status == DeliveryStatus.PENDING
        else None,
        "delivered_at": format_time(event.delivered_at) if event.delivered_at else None,
    }


@router.get(
    "/alerts",
    dependencies=[Read],
    response_model=list[AlertEventOut],
    responses={
        200: answer(
            list[AlertEventOut],
            links={
                "retry": link(
                    "POST /alerts/{event_id}/retry",
                    "Queues the newest event listed again",
                    event_id="$response.body#/0/id",
                ),
            },
        )
    },
)
def alerts(
    session: SessionDep,
    status: DeliveryStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    """Outbox events, newest first; `status=failed` lists those that need a person."""
    return [event_json(e) for e in AlertRepository(session).events(status, limit)]


@router.post("/alerts/{event_id}/retry", dependencies=[Write], response_model=AlertEventOut)
def retry(event_id: Annotated[int, Path(ge=1, le=MAX_ID)], session: SessionDep) -> dict[str, Any]:
    """Queues a failed event again (after its webhook or token was fixed)."""
    return event_json(AlertRepository(session).retry(event_id, utcnow()))

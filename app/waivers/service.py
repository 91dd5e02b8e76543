"""Adding a waiver, as `envparity waiver add` and `POST /waivers` do: one set of checks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from app.clock import parse_expiry
from app.db.models import WaiverRow
from app.diff.model import Waiver
from app.errors import InvalidInput
from app.waivers.repository import WaiverRepository, as_waiver
from collectors.base import CATEGORIES


@dataclass(frozen=True)
class WaiverRequest:
    """A waiver as asked for: the globs it matches, why, who answers for it, and the expiry
    as given (ISO date or time)."""

    reason: str
    comparison: str | None = None
    category: str | None = None
    resource_type: str | None = None
    key: str | None = None
    path: str | None = None
    owner: str | None = None
    expires: str | None = None


def check_waiver(request: WaiverRequest, now: datetime, *, flags: bool = False) -> WaiverRow:
    """The row to store, or InvalidInput: a known category, a reason that says something and
    an expiry after `now`. With `flags` the messages name the command's options (`--reason`)."""
    dashes = "--" if flags else ""
    if request.category is not None and request.category not in CATEGORIES:
        raise InvalidInput(f"{dashes}category must be one of {', '.join(CATEGORIES)}")
    if not request.reason.strip():
        raise InvalidInput(f"{dashes}reason must say why the difference is expected")
    expires_at = parse_expiry(request.expires, now) if request.expires else None
    return WaiverRow(
        comparison=request.comparison,
        category=request.category,
        resource_type=request.resource_type,
        key=request.key,
        path=request.path,
        reason=request.reason.strip(),
        owner=request.owner,
        expires_at=expires_at,
    )


def add_waiver(
    session: Session, request: WaiverRequest, now: datetime, *, flags: bool = False
) -> Waiver:
    """Stores the waiver if `check_waiver` accepts it."""
    row = WaiverRepository(session).add(check_waiver(request, now, flags=flags))
    return as_waiver(row)

"""Adding a waiver, as `envparity waiver add` and `POST /waivers` do: one set of checks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from app.clock import TimeOutOfRange, parse_expiry
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


# What the waivers table holds on every database (WaiverRow): no NUL character in any text
# (PostgreSQL refuses one, SQLite would keep it), none longer than its column.
MAX_LENGTH: dict[str, int] = {"comparison": 210, "resource_type": 200, "owner": 200}
_FIELDS = ("reason", "comparison", "category", "resource_type", "key", "path", "owner", "expires")


def unstorable(field: str, value: str | None) -> str | None:
    """Why the waivers table cannot hold `value` as `field` (None when it can): a NUL
    character, a text longer than its column, an expiry that leaves the years 1-9999 once
    turned to UTC (0001-01-01T00:00+14:00). The rule of `envparity waiver add` and of
    `POST /waivers` (whose body model declares the same limits)."""
    if value is None:
        return None
    if "\x00" in value:
        return "holds a NUL character, which no database column holds"
    limit = MAX_LENGTH.get(field)
    if limit is not None and len(value) > limit:
        return f"is longer than its column holds ({len(value)} characters, at most {limit})"
    if field == "expires":
        try:
            parse_expiry(value)
        except TimeOutOfRange:
            return "lies outside the years 1 to 9999 in UTC"
        except InvalidInput:  # not a time at all: check_waiver says so
            return None
    return None


def check_waiver(request: WaiverRequest, now: datetime, *, flags: bool = False) -> WaiverRow:
    """The row to store, or InvalidInput: texts the table holds (`unstorable`), a known
    category, a reason that says something and an expiry after `now`. With `flags` the
    messages name the command's options (`--reason`)."""
    dashes = "--" if flags else ""
    for name in _FIELDS:
        problem = unstorable(name, getattr(request, name))
        if problem is not None:
            shown = f"--{name.replace('_', '-')}" if flags else name
            raise InvalidInput(f"{shown} {problem}")
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

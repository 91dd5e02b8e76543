"""Adding a waiver, as `envparity waiver add` and `POST /waivers` do: one set of checks."""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

from app.clock import TimeOutOfRange, parse_expiry
from app.config import Config
from app.config.model import did_you_mean
from app.db.models import WaiverRow
from app.diff.model import DriftItem, Waiver
from app.diff.rules import path_matches
from app.errors import InvalidInput
from app.states import Change
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


# --------------------------------------------------------------------------- warnings

# The latest stored report of every declared comparison (as app/reports/stored.py reads
# them; Core SQL here, as reports sit above waivers in the layers).
_LATEST_REPORTS = text(
    "SELECT cs.comparison, d.body FROM comparison_state cs"
    " JOIN evaluations ev ON ev.id = cs.evaluation_id"
    " JOIN documents d ON d.hash = ev.report ORDER BY cs.comparison"
)


def latest_reported(session: Session) -> dict[str, list[DriftItem]]:
    """The drift items (waived and tolerated ones too) of each declared comparison's latest
    stored report, by comparison: what a new waiver can be checked against."""
    out: dict[str, list[DriftItem]] = {}
    for comparison, body in session.execute(_LATEST_REPORTS):
        out[comparison] = [
            # Only what a waiver matches on; the change does not take part.
            DriftItem(
                category=i["category"],
                resource_type=i["resource_type"],
                key=i["key"],
                path=i["path"],
                change=Change.CHANGED,
                left=None,
                right=None,
                parts=path_parts(i["path"]),
            )
            for i in json.loads(body).get("items", [])
        ]
    return out


def path_parts(path: str) -> tuple[str, ...]:
    """A report's path (`db.pool_size`, `ingress[tcp/22 from 0.0.0.0/0]`) back as the
    attribute names and [labels] it was written from."""
    parts: list[str] = []
    i = 0
    while i < len(path):
        if path[i] == "[":  # a label, up to its closing bracket (labels may nest brackets)
            depth, j = 0, i
            while j < len(path):
                depth += {"[": 1, "]": -1}.get(path[j], 0)
                if depth == 0:
                    break
                j += 1
            parts.append(path[i : j + 1])
            i = j + 1
        elif path[i] == ".":
            i += 1
        else:
            j = i
            while j < len(path) and path[j] not in ".[":
                j += 1
            parts.append(path[i:j])
            i = j
    return tuple(parts)


def _glob(pattern: str | None, value: str) -> bool:
    return pattern is None or fnmatch.fnmatchcase(value, pattern)


def _fields(request: WaiverRequest) -> dict[str, Callable[[DriftItem], bool]]:
    """The item-matching fields the request gives, each as a test of one drift item (the
    diff engine's rules: globs; a bare path name matches the last attribute)."""
    tests: dict[str, Callable[[DriftItem], bool]] = {}
    if request.category is not None:
        tests["category"] = lambda item: item.category == request.category
    if request.resource_type is not None:
        tests["resource_type"] = lambda item: _glob(request.resource_type, item.resource_type)
    if request.key is not None:
        tests["key"] = lambda item: _glob(request.key, item.key)
    if request.path is not None:
        tests["path"] = lambda item: path_matches(request.path, item)
    return tests


def _values(field: str, items: Iterable[DriftItem]) -> set[str]:
    """What the items hold in `field`, to suggest a close one from (paths: their last
    attribute names too, which a bare name matches)."""
    out: set[str] = set()
    for item in items:
        out.add(getattr(item, field))
        if field == "path":
            names = [p for p in item.parts if not p.startswith("[")]
            out.update(names[-1:])
    return out


def unmatched(
    session: Session,
    config: Config,
    request: WaiverRequest,
    *,
    flags: bool = False,
) -> list[str]:
    """Warnings for a waiver that is stored all the same: without a comparison it also
    hides drift over time (an environment against its baseline); a comparison, resource
    type, key or path that matches nothing in the latest stored reports is likely a typo
    (normalized keys read `web-{env}`, not `web-staging`). With `flags` the messages name
    the command's options."""

    def shown(name: str) -> str:
        return f"--{name.replace('_', '-')}" if flags else name

    warnings: list[str] = []
    if request.comparison is None:
        warnings.append(
            f"no {shown('comparison')}: the waiver applies to every comparison, over time "
            "too, so it also hides drift of an environment against its own past "
            "(`diff production@baseline production`); give "
            f"{shown('comparison')} SOURCE->TARGET to keep it to one"
        )
    reports = latest_reported(session)
    names = list(reports)
    scope = names
    if request.comparison is not None:
        scope = [name for name in names if _glob(request.comparison, name)]
        if not scope:
            warning = _no_comparison(config, request.comparison, names, shown)
            return [*warnings, warning] if warning else warnings
    if not scope:
        return warnings  # nothing judged yet: nothing to check against
    items = [item for name in scope for item in reports[name]]
    more = f" and {len(scope) - 5} more" if len(scope) > 5 else ""
    where = (
        f"the latest stored report{'s' if len(scope) > 1 else ''} of {', '.join(scope[:5])}{more}"
    )
    tests = _fields(request)
    missing = [field for field, test in tests.items() if not any(test(i) for i in items)]
    for field in missing:
        value = getattr(request, field)
        hint = did_you_mean(value, _values(field, items)) if field != "category" else ""
        warnings.append(
            f"{shown(field)} {value!r} matches no drift item in {where}: the waiver is stored "
            f"but hides nothing there today{hint}"
        )
    if tests and not missing and not any(all(t(i) for t in tests.values()) for i in items):
        given = ", ".join(f"{shown(f)} {getattr(request, f)!r}" for f in tests)
        warnings.append(
            f"no drift item in {where} matches {given} together: the waiver is stored but "
            "hides nothing there today"
        )
    return warnings


def _no_comparison(
    config: Config, pattern: str, stored: list[str], shown: Callable[[str], str]
) -> str | None:
    """The warning for a comparison glob no stored report matches: a likely typo when it
    names no pair of declared environments either; None before any report is stored."""
    envs = list(config.environments)
    pairs = [f"{a}->{b}" for a in envs for b in envs]
    if not any(_glob(pattern, pair) for pair in pairs):
        declared = [c.name for c in config.model.comparisons]
        return (
            f"{shown('comparison')} {pattern!r} matches no comparison of the declared "
            f"environments ({', '.join(envs)}): the waiver is stored but hides nothing"
            f"{did_you_mean(pattern, declared or pairs)}"
        )
    if not stored:
        return None  # nothing judged yet: nothing to check against
    return (
        f"{shown('comparison')} {pattern!r} matches no comparison with a stored report "
        f"(stored: {', '.join(stored)}), so it was not checked against any drift: reports "
        "are stored for the declared comparisons, after each scan"
    )

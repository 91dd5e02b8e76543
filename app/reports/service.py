"""Comparing two snapshot refs: resolve, load, run the engine, remember when drift first stood."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import case, select
from sqlalchemy.orm import Session

from app.config import Config
from app.db.models import DriftSeen, Snapshot
from app.db.upsert import dialect_insert
from app.diff.engine import compare
from app.diff.model import (
    SEVERITIES,
    DiffResult,
    DriftItem,
    Rules,
    SeverityRule,
    Side,
    SideResource,
    SourceState,
    Tolerance,
    Waiver,
)
from app.errors import InvalidInput, NotFound
from app.snapshots.repository import SnapshotRepository
from app.snapshots.schemas import format_time
from app.snapshots.store import batched
from app.waivers.repository import WaiverRepository
from collectors import registry

_REF = re.compile(r"^(?P<env>[A-Za-z0-9][A-Za-z0-9_.-]*)(?:@(?P<at>.+))?$")


@dataclass(frozen=True)
class SnapshotMeta:
    environment: str
    snapshot_id: int
    taken_at: datetime
    status: str

    def as_json(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "snapshot_id": self.snapshot_id,
            "taken_at": format_time(self.taken_at),
            "status": self.status,
        }


@dataclass
class Report:
    left: SnapshotMeta
    right: SnapshotMeta
    result: DiffResult
    generated_at: datetime

    @property
    def counting(self) -> list[DriftItem]:
        return [i for i in self.result.items if i.counts]

    def as_json(self) -> dict[str, Any]:
        listed = [i for i in self.result.items if not i.tolerated]
        by_severity = {s: 0 for s in reversed(SEVERITIES)}
        by_category: dict[str, int] = {}
        for item in listed:
            by_severity[item.severity] += 1
            by_category[item.category] = by_category.get(item.category, 0) + 1
        return {
            "comparison": self.result.comparison,
            "left": self.left.as_json(),
            "right": self.right.as_json(),
            "summary": {
                "items": len(listed),
                "unwaived": len(self.counting),
                "tolerated": len(self.result.items) - len(listed),
                "by_severity": by_severity,
                "by_category": dict(sorted(by_category.items())),
                "parity": self.result.parity,
                "compared": self.result.compared,
                "unknown_sources": len(self.result.unknown),
            },
            "unknown": [
                {
                    "side": u.side,
                    "environment": u.environment,
                    "source": u.source,
                    "error": u.error,
                    "resources": u.resources,
                }
                for u in self.result.unknown
            ],
            "items": [item_json(i) for i in sort_items(self.result.items)],
        }


def only_categories(report: Report, categories: set[str]) -> Report:
    """The report restricted to some categories (`--category`)."""
    result = report.result
    items = [i for i in result.items if i.category in categories]
    resources = [r for r in result.resources if r[0] in categories]
    differing = {(i.resource_type, i.key) for i in items if i.counts}
    return Report(
        report.left,
        report.right,
        DiffResult(
            result.comparison, items, result.unknown, len(resources), len(differing), resources
        ),
        report.generated_at,
    )


def gate_view(report: Report, failing: set[str]) -> Report:
    """The report as the gate judged it: drift that fails the gate, plus the documented
    (waived, tolerated) differences; drift below `fail_on` or outside the gated categories
    is left out, so a passing gate's JUnit has no failing case."""
    result = report.result
    items = [i for i in result.items if i.fingerprint in failing or not i.counts]
    differing = {(i.resource_type, i.key) for i in items if i.counts}
    view = DiffResult(
        result.comparison, items, result.unknown, result.compared, len(differing), result.resources
    )
    return Report(report.left, report.right, view, report.generated_at)


def only_fingerprints(report: Report, fingerprints: set[str]) -> Report:
    """The report's items with these fingerprints only (the gate's failing items)."""
    result = report.result
    items = [i for i in result.items if i.fingerprint in fingerprints]
    filtered = DiffResult(
        result.comparison,
        items,
        result.unknown,
        result.compared,
        result.differing,
        result.resources,
    )
    return Report(report.left, report.right, filtered, report.generated_at)


def item_json(item: DriftItem) -> dict[str, Any]:
    return {
        "category": item.category,
        "resource_type": item.resource_type,
        "key": item.key,
        "path": item.path,
        "change": item.change,
        "left": item.left,
        "right": item.right,
        "severity": item.severity,
        "waived": item.waived,
        "waiver": item.waiver,
        "tolerated": item.tolerated,
        "tolerance": item.tolerance,
        "detail": item.detail,
        "first_seen": format_time(item.first_seen) if item.first_seen else None,
        "fingerprint": item.fingerprint,
    }


def sort_items(items: list[DriftItem]) -> list[DriftItem]:
    """Counting drift first, worst first; then waived, then tolerated."""
    rank = {s: i for i, s in enumerate(reversed(SEVERITIES))}
    return sorted(
        items,
        key=lambda i: (i.tolerated, i.waived, rank[i.severity], i.category, i.key, i.path),
    )


# ----------------------------------------------------------------------------- refs


def parse_time(text: str) -> datetime:
    """ISO 8601; UTC unless the time carries an offset; a date alone means its end."""
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return datetime.combine(date.fromisoformat(text), time.max, UTC)
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"{text!r} is not an ISO 8601 time like 2026-11-20T10:00") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def parse_expiry(text: str, now: datetime | None = None) -> datetime:
    """An expiry: ISO time, or a date, which expires as that day begins (UTC). With `now`, an
    expiry not after it is refused: a waiver dead on arrival is a typo (a year, a day-month
    swap) that would otherwise hide nothing without a word."""
    expires = parse_time(text + "T00:00" if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text) else text)
    if now is not None and expires <= now:
        raise InvalidInput(
            f"expiry {text} is in the past ({format_time(expires)}): the waiver would never "
            "apply; give a later date or time"
        )
    return expires


def resolve(repo: SnapshotRepository, ref: str) -> Snapshot:
    """`ENV`, `ENV@baseline`, `ENV@ID` or `ENV@<ISO time>` to a snapshot."""
    m = _REF.match(ref.strip())
    if not m:
        raise InvalidInput(
            f"{ref!r} is not a ref: ENV, ENV@baseline, ENV@ID or ENV@2026-11-20T10:00"
        )
    env, at = m["env"], m["at"]
    if at is None:
        snapshot = repo.latest(env)
        if snapshot is None:
            if repo.environment(env) is None:
                raise NotFound(f"no environment {env!r} has any snapshot (check its spelling)")
            raise NotFound(f"{env!r} has no snapshot yet: run `envparity scan {env}`")
        return snapshot
    if at == "baseline":
        snapshot = repo.baseline(env)
        if snapshot is None:
            raise NotFound(f"{env!r} has no baseline: set one with `envparity baseline set {env}`")
        return snapshot
    if at.isdigit():
        snapshot = repo.snapshot(int(at))
        if snapshot.environment.name != env:
            raise NotFound(f"snapshot #{at} belongs to {snapshot.environment.name!r}, not {env!r}")
        return snapshot
    when = parse_time(at)
    snapshot = repo.latest(env, at_or_before=when)
    if snapshot is None:
        raise NotFound(f"{env!r} has no snapshot taken at or before {format_time(when)}")
    return snapshot


# ----------------------------------------------------------------------------- sides and rules


def side_of(repo: SnapshotRepository, config: Config, snapshot: Snapshot) -> Side:
    env = snapshot.environment.name
    declared = config.environments.get(env)
    vars_ = declared.vars if declared else {"env": env}
    resources = [
        SideResource(source, r.category, r.resource_type, r.key, None, r.hash, r.body)
        for source, stored in repo.resources(snapshot).items()
        for r in stored
    ]
    types = registry.source_types()
    return Side(
        environment=env,
        snapshot_id=snapshot.id,
        taken_at=snapshot.taken_at,
        status=snapshot.status,
        vars=dict(vars_),
        sources={s.name: SourceState(s.name, s.type, s.status, s.error) for s in snapshot.sources},
        resources=resources,
        volatile={name: cls.volatile_paths for name, cls in types.items() if cls.volatile_paths},
    )


def _expiry(value: date | datetime | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.combine(value, time.min, UTC)


def rules_of(config: Config, session: Session, now: datetime) -> Rules:
    model = config.model
    config_waivers = [
        Waiver(
            reason=rule.reason,
            comparison=rule.comparison,
            category=rule.category,
            resource_type=rule.resource_type,
            key=rule.key,
            path=rule.path,
            owner=rule.owner,
            expires=_expiry(rule.expires),
        )
        for rule in model.ignore
    ]
    return Rules(
        tolerances=tuple(
            Tolerance(t.path, t.allow, t.comparison, t.category, t.resource_type, t.key)
            for t in model.tolerate
        ),
        severity=tuple(
            SeverityRule(
                s.severity, s.comparison, s.category, s.resource_type, s.key, s.path, s.change
            )
            for s in model.severity
        ),
        waivers=(*config_waivers, *WaiverRepository(session).in_force(now)),
        environments={name: dict(env.vars) for name, env in config.environments.items()},
    )


def first_waiver_expiry(session: Session, config: Config, now: datetime) -> datetime | None:
    """When the first waiver in force runs out: a judgement holds until then at most."""
    expiries = [w.expires for w in rules_of(config, session, now).waivers if w.expires]
    return min((e for e in expiries if e > now), default=None)


def meta(snapshot: Snapshot) -> SnapshotMeta:
    return SnapshotMeta(snapshot.environment.name, snapshot.id, snapshot.taken_at, snapshot.status)


def compare_snapshots(
    session: Session, config: Config, left: Snapshot, right: Snapshot, now: datetime
) -> Report:
    repo = SnapshotRepository(session)
    result = compare(
        side_of(repo, config, left),
        side_of(repo, config, right),
        rules_of(config, session, now),
        now,
    )
    record_first_seen(session, result, max(left.taken_at, right.taken_at))
    return Report(meta(left), meta(right), result, now)


def compare_refs(
    session: Session, config: Config, left_ref: str, right_ref: str, now: datetime
) -> Report:
    repo = SnapshotRepository(session)
    return compare_snapshots(
        session, config, resolve(repo, left_ref), resolve(repo, right_ref), now
    )


def record_first_seen(session: Session, result: DiffResult, observed_at: datetime) -> None:
    """Keeps, per fingerprint, the earliest and latest data in which the difference stood.

    Several writers (a scan's evaluation, a gate's diff, an older snapshot compared
    afterwards) may record the same difference at once, so the earliest and latest are
    kept by the database in one upsert rather than read, compared and written back here:
    whichever commits last cannot put a later `first_seen` over an earlier one. Rows whose
    span already covers `observed_at` are not written at all (the span only widens).
    """
    items = {i.fingerprint: i for i in result.items}
    if not items:
        return
    fingerprints = sorted(items)
    known = _seen_spans(session, result.comparison, fingerprints)
    stale = [
        f for f in fingerprints if f not in known or not known[f][0] <= observed_at <= known[f][1]
    ]
    if stale:
        insert = dialect_insert(session, DriftSeen)
        statement = insert.on_conflict_do_update(
            index_elements=[DriftSeen.comparison, DriftSeen.fingerprint],
            set_={
                "first_seen": case(
                    (insert.excluded.first_seen < DriftSeen.first_seen, insert.excluded.first_seen),
                    else_=DriftSeen.first_seen,
                ),
                "last_seen": case(
                    (insert.excluded.last_seen > DriftSeen.last_seen, insert.excluded.last_seen),
                    else_=DriftSeen.last_seen,
                ),
            },
        )
        rows = [
            {
                "comparison": result.comparison,
                "fingerprint": f,
                "first_seen": observed_at,
                "last_seen": observed_at,
            }
            for f in stale  # in key order, so two writers lock PostgreSQL rows alike
        ]
        for batch in batched(rows):
            session.execute(statement, batch)
        known.update(_seen_spans(session, result.comparison, stale))
    for fingerprint, item in items.items():
        item.first_seen = known[fingerprint][0]


def _seen_spans(
    session: Session, comparison: str, fingerprints: list[str]
) -> dict[str, tuple[datetime, datetime]]:
    """Per fingerprint, the stored (first_seen, last_seen), read from the database."""
    known: dict[str, tuple[datetime, datetime]] = {}
    for batch in batched(fingerprints):
        rows = session.execute(
            select(DriftSeen.fingerprint, DriftSeen.first_seen, DriftSeen.last_seen).where(
                DriftSeen.comparison == comparison, DriftSeen.fingerprint.in_(batch)
            )
        )
        known.update({row[0]: (row[1], row[2]) for row in rows})
    return known

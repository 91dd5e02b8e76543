"""Comparing two snapshot refs: resolve, load, run the engine, remember when drift first stood."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time

from sqlalchemy.orm import Session

from app.clock import format_time, parse_time
from app.config import Config
from app.db.models import Snapshot
from app.diff.engine import compare
from app.diff.model import (
    Rules,
    SeverityRule,
    Side,
    SourceState,
    Tolerance,
    Waiver,
)
from app.errors import InvalidInput, NotFound
from app.reports.model import Report, SnapshotMeta
from app.reports.repository import record_first_seen
from app.snapshots.forms import EnvironmentForms, stored_resources, vars_of
from app.snapshots.repository import SnapshotRepository
from app.states import SnapshotStatus, SourceStatus
from app.waivers.repository import WaiverRepository
from collectors import registry

_REF = re.compile(r"^(?P<env>[A-Za-z0-9][A-Za-z0-9_.-]*)(?:@(?P<at>.+))?$")


# ----------------------------------------------------------------------------- refs


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


def side_of(
    repo: SnapshotRepository, config: Config, snapshot: Snapshot, forms: bool = True
) -> Side:
    """A stored snapshot as the engine takes it. With `forms` (a comparison with another
    environment) its resources carry their normal forms, and the engine reads the documents
    of only those whose forms differ; over time it reads those whose hashes differ."""
    env = snapshot.environment.name
    resources, contexts = stored_resources(
        repo.documents, snapshot, EnvironmentForms(config, env) if forms else None
    )
    types = registry.source_types()
    return Side(
        environment=env,
        snapshot_id=snapshot.id,
        taken_at=snapshot.taken_at,
        status=SnapshotStatus(snapshot.status),
        vars=vars_of(config, env),
        sources={
            s.name: SourceState(s.name, s.type, SourceStatus(s.status), s.error)
            for s in snapshot.sources
        },
        resources=resources,
        volatile={name: cls.volatile_paths for name, cls in types.items() if cls.volatile_paths},
        form_contexts=contexts,
        fetch=repo.documents.get,
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
                s.severity,
                s.comparison,
                s.category,
                s.resource_type,
                s.key,
                s.path,
                s.change,
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
    status = SnapshotStatus(snapshot.status)
    return SnapshotMeta(snapshot.environment.name, snapshot.id, snapshot.taken_at, status)


def compare_snapshots(
    session: Session, config: Config, left: Snapshot, right: Snapshot, now: datetime
) -> Report:
    repo = SnapshotRepository(session)
    cross = left.environment_id != right.environment_id
    result = compare(
        side_of(repo, config, left, cross),
        side_of(repo, config, right, cross),
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

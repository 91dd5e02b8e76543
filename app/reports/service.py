"""Comparing two snapshot refs: resolve, load, run the engine, remember when drift first stood."""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from dataclasses import replace
from datetime import UTC, date, datetime, time
from typing import Generic, TypeVar

from sqlalchemy.orm import Session

from app.clock import TimeOutOfRange, format_time, parse_time
from app.config import Config
from app.config.model import did_you_mean
from app.db.models import Snapshot
from app.diff.engine import compare
from app.diff.model import (
    DiffResult,
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
from app.runtime import Runtime
from app.snapshots.forms import EnvironmentForms, stored_resources, vars_of, volatile_paths
from app.snapshots.repository import SnapshotRepository
from app.states import SnapshotStatus, SourceStatus
from app.waivers.repository import WaiverRepository

T = TypeVar("T")

_REF = re.compile(r"^(?P<env>[A-Za-z0-9][A-Za-z0-9_.-]*)(?:@(?P<at>.+))?$")
# The forms of a ref, for the message that refuses one (docs/diff.md, SPEC).
REF_FORMS = (
    "ENV (its latest snapshot), ENV@baseline, ENV@ID (a snapshot id) or ENV@TIME (the latest "
    "at or before an ISO 8601 time, UTC unless it has an offset: 2026-11-20T10:00, 2026-11-20)"
)


# ----------------------------------------------------------------------------- refs


def resolve(repo: SnapshotRepository, ref: str, config: Config | None = None) -> Snapshot:
    """`ENV`, `ENV@baseline`, `ENV@ID` or `ENV@<ISO time>` to a snapshot. With `config`, an
    environment it does not declare and the database has never heard of is refused as
    `scan` refuses it (declared names, a likely misspelling)."""
    m = _REF.match(ref.strip())
    if not m:
        raise InvalidInput(f"{ref!r} is not a ref: a ref is {REF_FORMS}")
    env, at = m["env"], m["at"]
    if config is not None and env not in config.environments and repo.environment(env) is None:
        raise NotFound(config.undeclared(env))
    if at is None:
        snapshot = repo.latest(env)
        if snapshot is None:
            declared = config is not None and env in config.environments
            if not declared and repo.environment(env) is None:
                raise NotFound(f"no environment {env!r} has any snapshot (check its spelling)")
            raise NotFound(f"{env!r} has no snapshot yet: {_first_snapshot(config, env)}")
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
    when = _time_of(env, at, ref)
    snapshot = repo.latest(env, at_or_before=when)
    if snapshot is None:
        raise NotFound(f"{env!r} has no snapshot taken at or before {format_time(when)}")
    return snapshot


def _time_of(env: str, at: str, ref: str) -> datetime:
    """The time of `ENV@TIME`; a text after `@` that is no ref form lists the forms, and
    suggests `ENV@baseline` when it is close (`staging@basline`)."""
    try:
        return parse_time(at)
    except TimeOutOfRange:
        raise
    except InvalidInput:
        if at[:1].isdigit():  # meant as a time: say what is wrong with the time
            raise InvalidInput(
                f"{ref!r}: {at!r} is not an ISO 8601 time like 2026-11-20T10:00 "
                f"(a ref is {REF_FORMS})"
            ) from None
        suggestion = did_you_mean(at, ["baseline"], shown=env + "@{}")
        raise InvalidInput(
            f"{ref!r} is not a ref: {at!r} is not `baseline`, a snapshot id or a time"
            f"{suggestion} (a ref is {REF_FORMS})"
        ) from None


def _first_snapshot(config: Config | None, env: str) -> str:
    """How an environment gets its first snapshot: a scan, or a push for a push-only one."""
    declared = config.environments.get(env) if config is not None else None
    if declared is not None and declared.push_only:
        return f"it is push-only: push one with `envparity push {env} FILE`"
    return f"run `envparity scan {env}`"


# ----------------------------------------------------------------------------- sides and rules


class SideCache:
    """The sides loaded last, by snapshot and whether with forms: a push evaluates every
    comparison its environment takes part in, and each would load that same side again; a
    server's next push to that environment finds the other sides, which did not change,
    still loaded. Holds the `size` most recently used, and no more than `max_resources`
    resources in all when that is given (the latest side is always kept: a side of a million
    resources is large). Shared by threads."""

    def __init__(self, size: int = 4, max_resources: int | None = None) -> None:
        self.size = size
        self.max_resources = max_resources
        self.sides: OrderedDict[Hashable, Side] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: Hashable) -> Side | None:
        with self.lock:
            side = self.sides.get(key)
            if side is not None:
                self.sides.move_to_end(key)
                self._trim()  # what the engine normalized since counts too
            return side

    def put(self, key: Hashable, side: Side) -> None:
        with self.lock:
            self.sides[key] = side
            self.sides.move_to_end(key)
            self._trim()

    def _trim(self) -> None:
        while len(self.sides) > self.size or (
            len(self.sides) > 1
            and self.max_resources is not None
            and sum(_weight(s) for s in self.sides.values()) > self.max_resources
        ):
            self.sides.popitem(last=False)


def _weight(side: Side) -> int:
    """A side's size in resources: its rows, and each document the engine normalized and
    kept with it counted as ten (a normalized document weighs about as much as ten rows)."""
    return len(side.resources) + 10 * sum(len(m) for m in side.normalized.values())


# How many loaded sides a long-running process keeps between evaluations, and how many
# resources they may hold in all (about 0.5 KB each: some 100 MB at the most).
SIDES_KEPT = 64
SIDE_RESOURCES_KEPT = 200_000


def kept_sides(runtime: Runtime) -> SideCache:
    """The sides this process's evaluations loaded, kept for the next: the other sides of a
    push's comparisons rarely change between two pushes (snapshots never change; the config
    is the runtime's own)."""
    with _KEEPING:
        sides = runtime.kept.get("sides")
        if sides is None:
            sides = runtime.kept["sides"] = SideCache(SIDES_KEPT, SIDE_RESOURCES_KEPT)
    assert isinstance(sides, SideCache)
    return sides


_KEEPING = threading.Lock()


def side_of(
    repo: SnapshotRepository,
    config: Config,
    snapshot: Snapshot,
    forms: bool = True,
    cache: SideCache | None = None,
) -> Side:
    """A stored snapshot as the engine takes it. With `forms` (a comparison with another
    environment) its resources carry their normal forms, and the engine reads the documents
    of only those whose forms differ; over time it reads those whose hashes differ. A side
    in `cache` (loaded under the same config) is reused, reading through this `repo`."""
    if cache is not None:
        # By what the side is made of, not its id alone: `db rescrub` gives a snapshot's
        # sources new manifests under the same id, and an id may be given again once its
        # snapshot was removed.
        key = (
            snapshot.id,
            snapshot.taken_at,
            snapshot.status,
            forms,
            tuple((s.name, s.status, s.manifest) for s in snapshot.sources),
        )
        known = cache.get(key)
        if known is None:
            known = side_of(repo, config, snapshot, forms)
            cache.put(key, known)
        return replace(known, fetch=repo.documents.get)  # the engine never changes a side
    env = snapshot.environment.name
    resources, contexts = stored_resources(
        repo.documents, snapshot, EnvironmentForms(config, env) if forms else None
    )
    types = {s.type for s in snapshot.sources}
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
        volatile={t: paths for t in sorted(types) if (paths := volatile_paths(t))},
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


class InFlight(Generic[T]):
    """Work being done in this process, by everything its result depends on: whoever asks
    for the same key while it is being made waits for that one result (or failure) instead
    of making it again beside it (on a busy server, two at once take as long each as both
    in turn). Nothing is kept once it is made."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pending: dict[Hashable, Future[T]] = {}

    def result(self, key: Hashable, make: Callable[[], T]) -> T:
        with self.lock:
            pending = self.pending.get(key)
            mine = pending is None
            if pending is None:
                pending = self.pending[key] = Future()
        if not mine:
            return pending.result()
        try:
            result = make()
        except BaseException as exc:
            pending.set_exception(exc)
            raise
        else:
            pending.set_result(result)
            return result
        finally:
            with self.lock:
                del self.pending[key]


# The comparisons this process is making, by the database, both snapshots, the rules and
# the waivers in force: when new snapshots land, the push's evaluation and the gate
# requests that arrive meanwhile need the same comparison, made once.
JUDGING: InFlight[DiffResult] = InFlight()


def compared(
    repo: SnapshotRepository,
    config: Config,
    left: Snapshot,
    right: Snapshot,
    rules: Rules,
    now: datetime,
    sides: SideCache | None = None,
) -> DiffResult:
    """The engine's result for two stored snapshots, made once in this process however many
    ask for it at the same moment (JUDGING)."""
    cross = left.environment_id != right.environment_id
    # The database and the config by identity: both stay alive while the comparison is
    # being made (its closure holds them), so no other can take their ids meanwhile; the
    # config fixes every rule but the stored waivers, which are in the key as they stand.
    engine = repo.session.get_bind().engine
    key = (id(engine), id(config), left.id, right.id, cross, rules.waivers)
    return JUDGING.result(
        key,
        lambda: compare(
            side_of(repo, config, left, cross, sides),
            side_of(repo, config, right, cross, sides),
            rules,
            now,
        ),
    )


def compare_snapshots(
    session: Session,
    config: Config,
    left: Snapshot,
    right: Snapshot,
    now: datetime,
    sides: SideCache | None = None,
) -> Report:
    repo = SnapshotRepository(session)
    result = compared(repo, config, left, right, rules_of(config, session, now), now, sides)
    record_first_seen(session, result, max(left.taken_at, right.taken_at))
    return Report(meta(left), meta(right), result, now)


def compare_refs(
    session: Session, config: Config, left_ref: str, right_ref: str, now: datetime
) -> Report:
    repo = SnapshotRepository(session)
    return compare_snapshots(
        session, config, resolve(repo, left_ref, config), resolve(repo, right_ref, config), now
    )

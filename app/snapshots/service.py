"""Scan, push, export. A scan job is a unit-of-work edge: it commits its lock and its result."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, BinaryIO, Protocol

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from app.clock import SYSTEM, Clock, format_time
from app.config import Config, Environment
from app.diff.heap import cycle_collection_paused
from app.errors import ConfigError, EnvparityError, NotFound, ScanInProgress
from app.snapshots import jsonstream
from app.snapshots.forms import EnvironmentForms
from app.snapshots.ingest import PushIngest, document_events
from app.snapshots.repository import SnapshotRepository, SourceRecord
from app.snapshots.schemas import CLOCK_SKEW
from app.snapshots.store import collect_garbage
from app.states import ScanTrigger, SnapshotOrigin, SnapshotStatus, SourceStatus
from collectors.base import FetchContext, SourceOptions
from collectors.limits import clean_text
from collectors.runner import SourceOutcome, run_source
from collectors.secrets import Redactor

log = logging.getLogger(__name__)

MAX_PARALLEL_SOURCES = 8
HEARTBEAT_EVERY = 60.0  # seconds; a scan whose heartbeat is 30 minutes old is taken for dead


class ScanProgress(Protocol):
    def started(self, environment: str, sources: list[str]) -> None: ...
    def source_done(self, environment: str, outcome: SourceOutcome) -> None: ...


@dataclass(frozen=True)
class ScanResult:
    scan_id: int
    snapshot_id: int
    environment: str
    status: SnapshotStatus
    sources: list[SourceOutcome]

    @property
    def resource_count(self) -> int:
        return sum(len(s.resources) for s in self.sources)


def scannable(config: Config, environment: str) -> Environment:
    """The declared environment, if it has sources: a push-only one is refused."""
    env = config.environment(environment)
    if env.push_only:
        raise ConfigError(
            f"environment {environment!r} has no sources: it is push-only "
            "(`envparity push` or the push endpoint)"
        )
    return env


class Scanner:
    """Runs scans of configured environments into the database."""

    def __init__(
        self,
        config: Config,
        sessions: sessionmaker[Session],
        redactor: Redactor,
        heartbeat_every: float = HEARTBEAT_EVERY,
        on_stored: Callable[[str], object] | None = None,
        clock: Clock = SYSTEM,
    ) -> None:
        """`on_stored(environment)` runs after each stored snapshot (the comparisons'
        evaluation); what it raises is logged, never the scan's failure. `clock` stamps the
        snapshots and paces the waits."""
        self.config = config
        self.sessions = sessions
        self.redactor = redactor
        self.heartbeat_every = heartbeat_every
        self.on_stored = on_stored
        self.clock = clock

    def scan(
        self,
        environment: str,
        *,
        trigger: str = ScanTrigger.CLI,
        progress: ScanProgress | None = None,
        wait: float = 0.0,
    ) -> ScanResult:
        scan_id = self.start(environment, trigger=trigger, wait=wait)
        return self.run(environment, scan_id, progress)

    def start(self, environment: str, *, trigger: str = ScanTrigger.CLI, wait: float = 0.0) -> int:
        """Takes the environment's scan lock: the running scan's id (ScanInProgress if taken)."""
        env = scannable(self.config, environment)
        scan_id = self._acquire(env, trigger, wait)
        log.info(
            "scan #%s of %s started (%s, %s)",
            scan_id,
            env.name,
            trigger,
            _counted(len(env.sources), "source"),
            extra={
                "event": "scan.started",
                "scan_id": scan_id,
                "environment": env.name,
                "trigger": str(trigger),
                "sources": len(env.sources),
            },
        )
        return scan_id

    def run(
        self, environment: str, scan_id: int, progress: ScanProgress | None = None
    ) -> ScanResult:
        """Collects and stores the scan that `start` began; always releases its lock."""
        env = self.config.environment(environment)
        began = self.clock.monotonic()
        try:
            taken_at = self.clock.now()
            with _Heartbeat(self.sessions, scan_id, self.heartbeat_every, self.clock):
                outcomes = self._collect(env, progress)
            records = _records(outcomes)
            with cycle_collection_paused():
                forms = EnvironmentForms(self.config, env.name).prepare(records)
            with self.sessions.begin() as session, cycle_collection_paused():
                _check_clock(session, self.clock.now())
                repo = SnapshotRepository(session)
                snapshot = repo.add_snapshot(
                    repo.ensure_environment(env.name),
                    taken_at,
                    SnapshotOrigin.SCAN,
                    records,
                    forms,
                )
                scan = repo.scan(scan_id)
                trigger = scan.trigger
                repo.finish_scan(scan, snapshot)
                snapshot_id, status = snapshot.id, SnapshotStatus(snapshot.status)
        except BaseException as exc:
            error = clean_text(self.redactor.scrub(repr(exc)))
            with self.sessions.begin() as session:
                repo = SnapshotRepository(session)
                scan = repo.scan(scan_id)
                trigger = scan.trigger
                repo.finish_scan(scan, None, error)
            log.warning(
                "scan #%s of %s failed: %s",
                scan_id,
                env.name,
                error,
                extra={
                    "event": "scan.finished",
                    "scan_id": scan_id,
                    "environment": env.name,
                    "trigger": trigger,
                    "status": SnapshotStatus.FAILED.value,
                    "duration_ms": round((self.clock.monotonic() - began) * 1000),
                    "error": error,
                },
            )
            raise
        _log_finished(scan_id, snapshot_id, env.name, trigger, status, outcomes, began, self.clock)
        if self.on_stored is not None:
            try:
                self.on_stored(env.name)
            except Exception:  # the snapshot is stored: evaluation catches up later
                log.exception("scan #%s of %s: evaluation after the scan failed", scan_id, env.name)
        return ScanResult(scan_id, snapshot_id, env.name, status, outcomes)

    def _acquire(self, env: Environment, trigger: str, wait: float) -> int:
        clock = self.clock
        deadline = clock.monotonic() + wait
        while True:
            try:
                with self.sessions.begin() as session:
                    repo = SnapshotRepository(session)
                    return repo.start_scan(repo.ensure_environment(env.name), trigger).id
            except ScanInProgress:
                if clock.monotonic() >= deadline:
                    raise
                clock.sleep(min(1.0, max(0.05, deadline - clock.monotonic())))

    def _collect(self, env: Environment, progress: ScanProgress | None) -> list[SourceOutcome]:
        ctx = FetchContext(
            environment=env.name,
            base_dir=self.config.base_dir,
            vars=env.vars,
            hash_secret=self.redactor.hash,
            limits=self.config.model.limits.limits(),
        )
        if progress is not None:
            progress.started(env.name, [s.name or s.type for s in env.sources])

        def one(options: SourceOptions) -> SourceOutcome:
            outcome = run_source(options, ctx, self.redactor)
            if progress is not None:
                progress.source_done(env.name, outcome)
            return outcome

        workers = min(MAX_PARALLEL_SOURCES, len(env.sources))
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="envparity-scan")
        try:
            outcomes = list(pool.map(one, env.sources))
        except BaseException:
            # Stopped (SIGTERM, Ctrl-C): the scan is recorded as failed now, not once every
            # source has reached its timeout.
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown()
        return _unique_across_sources(outcomes)


def _log_finished(
    scan_id: int,
    snapshot_id: int,
    environment: str,
    trigger: str,
    status: SnapshotStatus,
    outcomes: list[SourceOutcome],
    began: float,
    clock: Clock,
) -> None:
    """A warning per failed source (its error is scrubbed), then the scan's line."""
    failed = [o for o in outcomes if o.status != "ok"]  # the collectors' Literal
    for outcome in failed:
        log.warning(
            "scan #%s of %s: source %s failed: %s",
            scan_id,
            environment,
            outcome.name,
            outcome.error,
            extra={
                "event": "scan.source_failed",
                "scan_id": scan_id,
                "environment": environment,
                "source": outcome.name,
                "source_type": outcome.type,
                "error": outcome.error,
            },
        )
    duration_ms = round((clock.monotonic() - began) * 1000)
    resources = sum(len(o.resources) for o in outcomes)
    log.info(
        "scan #%s of %s finished: %s, %s, %d of %s failed, %d ms",
        scan_id,
        environment,
        status,
        _counted(resources, "resource"),
        len(failed),
        _counted(len(outcomes), "source"),
        duration_ms,
        extra={
            "event": "scan.finished",
            "scan_id": scan_id,
            "snapshot_id": snapshot_id,
            "environment": environment,
            "trigger": trigger,
            "status": status.value,
            "duration_ms": duration_ms,
            "resources": resources,
            "sources": len(outcomes),
            "ok_sources": len(outcomes) - len(failed),
            "failed_sources": len(failed),
        },
    )


def _counted(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


class ClockAhead(EnvparityError):
    """This host's clock is ahead of the shared database's: its snapshot would be "latest"
    over every later scan from a host whose clock is right."""

    status = 409


def _check_clock(session: Session, now: datetime) -> None:
    """On PostgreSQL (one database, many hosts) a scan from a host whose clock runs ahead of
    the database server's by more than the skew a push is allowed is refused, not stored. On
    SQLite the database lives on this host and shares its clock: there is nothing to compare."""
    if session.get_bind().dialect.name != "postgresql":
        return
    db_now = session.execute(text("SELECT statement_timestamp()")).scalar_one()
    if now - db_now > CLOCK_SKEW:
        raise ClockAhead(
            f"this host's clock ({format_time(now)}) is {_ahead(now - db_now)} ahead of the "
            f"database server's ({format_time(db_now)}): the snapshot was not stored (it would "
            "stay the latest over every correct scan); set this host's clock right (NTP)"
        )


def _ahead(delta: timedelta) -> str:
    minutes = round(delta.total_seconds() / 60)
    return f"{minutes // 60}h {minutes % 60}m" if minutes >= 60 else f"{minutes}m"


class _Heartbeat:
    """Refreshes a running scan's heartbeat, so that nobody takes a long scan for a dead one;
    `every` seconds of `clock` apart."""

    def __init__(
        self, sessions: sessionmaker[Session], scan_id: int, every: float, clock: Clock = SYSTEM
    ) -> None:
        self.sessions = sessions
        self.scan_id = scan_id
        self.every = every
        self.clock = clock
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name="envparity-heartbeat")

    def __enter__(self) -> None:
        self.thread.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        self.thread.join()

    def _run(self) -> None:
        while not self.clock.wait(self.stop, self.every):
            try:
                with self.sessions.begin() as session:
                    SnapshotRepository(session).heartbeat(self.scan_id)
            except SQLAlchemyError as exc:  # a missed beat is not worth failing the scan
                log.warning(
                    "scan #%s: heartbeat not recorded: %s", self.scan_id, type(exc).__name__
                )


def _unique_across_sources(outcomes: list[SourceOutcome]) -> list[SourceOutcome]:
    """A resource reported by two sources of one environment fails the later source."""
    seen: dict[tuple[str, str], str] = {}
    out = []
    for outcome in outcomes:
        clash = next(
            (
                (r, seen[(r.resource_type, r.key)])
                for r in outcome.resources
                if (r.resource_type, r.key) in seen
            ),
            None,
        )
        if clash is not None:
            resource, other = clash
            outcome = SourceOutcome(
                name=outcome.name,
                type=outcome.type,
                status="failed",  # a SourceOutcome: the collectors' Literal
                error=f"{resource.resource_type} {resource.key!r} is also reported by source "
                f"{other!r}; give the sources distinct paths or resource types",
                duration_ms=outcome.duration_ms,
            )
        for r in outcome.resources:
            seen[(r.resource_type, r.key)] = outcome.name
        out.append(outcome)
    return out


def _records(outcomes: list[SourceOutcome]) -> list[SourceRecord]:
    return [
        SourceRecord(
            name=o.name,
            type=o.type,
            status=SourceStatus(o.status),
            error=o.error,
            duration_ms=o.duration_ms,
            resources=[(r.category, r.resource_type, r.key, r.attributes) for r in o.resources],
            census=o.census,
        )
        for o in outcomes
    ]


# --------------------------------------------------------------------------- push / export


def push(
    session: Session, config: Config, environment: str, data: Any, redactor: Redactor
) -> tuple[int, SnapshotStatus]:
    """Stores a pushed snapshot, given parsed; refused whole (InvalidInput) if anything is
    malformed."""
    return _push(session, config, environment, document_events(data), redactor)


def push_stream(
    session: Session,
    config: Config,
    environment: str,
    raw: BinaryIO,
    redactor: Redactor,
    where: str = "the body",
) -> tuple[int, SnapshotStatus]:
    """Stores a pushed snapshot read from a byte stream (a file, stdin, a request body) as
    it is read, in memory bounded by its rows rather than its documents (see
    app.snapshots.ingest); refused whole like `push`."""
    return _push(session, config, environment, jsonstream.events(raw, where), redactor)


def _push(
    session: Session,
    config: Config,
    environment: str,
    events: Iterable[jsonstream.Event],
    redactor: Redactor,
) -> tuple[int, SnapshotStatus]:
    config.environment(environment)  # must be declared, so that its vars are known
    with cycle_collection_paused():
        ingest = PushIngest(config, environment, redactor)
        records = ingest.take(events)
        try:
            repo = SnapshotRepository(session)
            snapshot = repo.add_snapshot(
                repo.ensure_environment(environment),
                ingest.taken_at,
                SnapshotOrigin.PUSH,
                records,
                ingest.forms,
            )
        finally:
            ingest.close()
    return snapshot.id, SnapshotStatus(snapshot.status)


def export(
    session: Session,
    environment: str,
    snapshot_id: int | None = None,
    config: Config | None = None,
) -> dict[str, Any]:
    """A snapshot in the push format, plus environment, snapshot_id and status. With
    `config`, an environment it does not declare and that has no snapshot is refused as
    `scan` refuses it (declared names, a likely misspelling)."""
    repo = SnapshotRepository(session)
    declared = config is None or environment in config.environments
    if config is not None and not declared and repo.environment(environment) is None:
        raise NotFound(config.undeclared(environment))
    if snapshot_id is None:
        snapshot = repo.latest(environment)
        if snapshot is None:
            raise NotFound(f"environment {environment!r} has no snapshot yet")
    else:
        snapshot = repo.snapshot(snapshot_id)
        if snapshot.environment.name != environment:
            raise NotFound(f"snapshot #{snapshot_id} does not belong to {environment!r}")
    by_source = repo.resources(snapshot)
    return {
        "environment": environment,
        "snapshot_id": snapshot.id,
        "status": snapshot.status,
        "taken_at": format_time(snapshot.taken_at),
        "sources": [
            {"name": s.name, "type": s.type, "status": s.status, "error": s.error}
            for s in snapshot.sources
        ],
        "resources": [
            {
                "source": s.name,
                "category": r.category,
                "resource_type": r.resource_type,
                "key": r.key,
                "attributes": r.attributes,
            }
            for s in snapshot.sources
            for r in by_source.get(s.name, [])
        ],
    }


# --------------------------------------------------------------------------- removal


@dataclass
class Removed:
    """What `snapshots rm` changed, for the person who asked."""

    snapshot_id: int
    environment: str
    taken_at: datetime
    origin: str
    resources: int
    reports: int
    baseline_cleared: bool
    latest_now: int | None  # the environment's latest snapshot afterwards
    documents: int  # documents nothing refers to any more, deleted


def remove_snapshot(session: Session, snapshot_id: int) -> Removed:
    """Removes one snapshot with its stored reports (evaluations), its baseline role and the
    documents only it used. Comparisons that judged it are judged afresh next time."""
    repo = SnapshotRepository(session)
    snapshot = repo.snapshot(snapshot_id)
    environment = snapshot.environment.name
    taken_at, origin, resources = snapshot.taken_at, snapshot.origin, snapshot.resource_count
    reports, baseline_cleared = repo.remove(snapshot_id)
    documents = collect_garbage(session)
    latest = repo.latest(environment)
    return Removed(
        snapshot_id=snapshot_id,
        environment=environment,
        taken_at=taken_at,
        origin=origin,
        resources=resources,
        reports=reports,
        baseline_cleared=baseline_cleared,
        latest_now=latest.id if latest is not None else None,
        documents=documents,
    )

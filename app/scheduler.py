"""Scans on a schedule (APScheduler 3.x): one job per environment, never two scans of one
environment at once, and on PostgreSQL one leader among several processes. The leader also
prunes the stored reports past the retention policy (`retention.schedule`, daily)."""

from __future__ import annotations

import contextlib
import logging
import threading
import zlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from apscheduler.job import Job
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Connection, text
from sqlalchemy.exc import SQLAlchemyError

from app.alerts.evaluate import evaluating_scanner
from app.clock import format_duration, format_time
from app.config import Config, Schedule, schedule_text
from app.errors import EnvparityError, ScanInProgress
from app.runtime import Runtime
from app.states import ScanTrigger

log = logging.getLogger(__name__)
LEADER_LOCK = zlib.crc32(b"envparity-scheduler-leader")
MISFIRE_GRACE = 300  # seconds a late run may still start; older misses coalesce into one
PRUNE_JOB = "prune"
# An interval's first prune, after the scheduler starts: a process restarted more often than
# the interval (a daily deploy, a daily prune) still prunes, and starting stays quick.
FIRST_PRUNE_AFTER = timedelta(minutes=1)


class Leadership:
    """Who runs due scans. PostgreSQL: the process holding a session advisory lock on its
    own connection (a standby takes over when the leader's connection dies). SQLite: this
    process, alone (run one scheduler per SQLite database)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.shared = runtime.engine.dialect.name == "postgresql"
        self.connection: Connection | None = None
        self.lock = threading.Lock()

    def is_leader(self) -> bool:
        if not self.shared:
            return True
        with self.lock:
            if self.connection is not None:
                try:
                    self.connection.execute(text("SELECT 1"))
                    return True
                except SQLAlchemyError:  # the connection died: so did the lock
                    self.connection.invalidate()
                    self.connection.close()
                    self.connection = None
            connection = self.runtime.engine.connect()
            won = connection.execute(
                text("SELECT pg_try_advisory_lock(:key)"), {"key": LEADER_LOCK}
            ).scalar()
            if won:
                connection.commit()
                self.connection = connection
                log.info("this process leads the scheduler")
                return True
            connection.close()
            return False

    def release(self) -> None:
        with self.lock:
            if self.connection is not None:
                # A pooled connection would keep its session, and the lock with it: end it.
                self.connection.invalidate()
                self.connection.close()
                self.connection = None


def trigger_for(schedule: Schedule) -> IntervalTrigger | CronTrigger:
    """An interval (`15m` in the config) or a 5-field cron expression, in UTC."""
    if isinstance(schedule, timedelta):
        return IntervalTrigger(seconds=schedule.total_seconds(), timezone=UTC)
    return CronTrigger.from_crontab(schedule, timezone=UTC)


def build(runtime: Runtime) -> tuple[BackgroundScheduler, Leadership]:
    """A scheduler with one job per environment that has a `schedule` and sources. APScheduler
    says when a scan is due; the scans themselves read and wait on the runtime's clock."""
    leadership = Leadership(runtime)
    scheduler = BackgroundScheduler(
        timezone=UTC,
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": MISFIRE_GRACE},
    )
    scanner = evaluating_scanner(runtime)

    def scan(environment: str) -> None:
        fields = {"environment": environment, "trigger": ScanTrigger.SCHEDULER.value}
        if not leadership.is_leader():
            log.debug(
                "scheduled scan of %s: another process leads the scheduler",
                environment,
                extra={"event": "schedule.standby", **fields},
            )
            return
        try:
            scan_id = scanner.start(environment, trigger=ScanTrigger.SCHEDULER)
        except ScanInProgress as exc:
            log.info(
                "scheduled scan of %s skipped: %s",
                environment,
                exc.message,
                extra={"event": "schedule.skipped", "running_scan_id": exc.scan_id, **fields},
            )
            return
        except EnvparityError as exc:
            log.warning(
                "scheduled scan of %s did not start: %s",
                environment,
                exc.message,
                extra={"event": "schedule.failed", "error": exc.message, **fields},
            )
            return
        # The scanner logs the scan's start and end (`scan.started`, `scan.finished`).
        with contextlib.suppress(EnvparityError):
            scanner.run(environment, scan_id)

    for env in runtime.config.environments.values():
        if env.schedule is not None and not env.push_only:
            scheduler.add_job(
                scan,
                trigger_for(env.schedule),
                args=[env.name],
                id=f"scan:{env.name}",
                name=f"scan {env.name} ({schedule_text(env.schedule)})",
            )
    schedule = runtime.config.model.retention.schedule
    if schedule is not None:
        first = {}
        if isinstance(schedule, timedelta):
            first["next_run_time"] = datetime.now(UTC) + min(schedule, FIRST_PRUNE_AFTER)
        scheduler.add_job(
            pruner(runtime, leadership),
            trigger_for(schedule),
            id=PRUNE_JOB,
            name=f"prune stored reports ({schedule_text(schedule)})",
            **first,
        )
    return scheduler, leadership


def pruner(runtime: Runtime, leadership: Leadership) -> Callable[[], None]:
    """The scheduled prune (app.reports.retention) as of the runtime's clock, by the leader
    only; a failure is logged and the next run tries again."""

    def prune() -> None:
        if not leadership.is_leader():
            log.debug(
                "scheduled prune: another process leads the scheduler",
                extra={"event": "retention.standby"},
            )
            return
        from app.reports.retention import prune as prune_reports

        policy = runtime.config.model.retention
        try:
            pruned = prune_reports(runtime.sessions, policy, runtime.clock.now())
        except (EnvparityError, SQLAlchemyError) as exc:
            reason = exc.message if isinstance(exc, EnvparityError) else str(exc).splitlines()[0]
            log.warning(
                "scheduled prune of stored reports failed: %s",
                reason,
                extra={"event": "retention.failed", "error": reason},
            )
            return
        log.info(
            "pruned %d stored report(s) older than %s and %d document(s) nothing else used; "
            "%d stored report(s) kept",
            pruned.evaluations,
            format_duration(policy.evaluations),
            pruned.documents,
            pruned.kept,
            extra={
                "event": "retention.pruned",
                "evaluations": pruned.evaluations,
                "documents": pruned.documents,
                "kept": pruned.kept,
                "cutoff": format_time(pruned.cutoff),
                "comparisons": len(pruned.comparisons),
            },
        )

    return prune


def announce(scheduler: BackgroundScheduler, config: Config) -> None:
    """A line per job of a started scheduler: its environment (or the prune), schedule and
    next run."""
    for job in scheduler.get_jobs():
        if job.id == PRUNE_JOB:
            _announce_prune(job, config)
            continue
        environment = job.args[0]
        shown = config.environment(environment).schedule_text
        next_run = format_time(job.next_run_time) if job.next_run_time else None
        log.info(
            "scheduled scans of %s (%s): next at %s",
            environment,
            shown,
            next_run,
            extra={
                "event": "schedule.job",
                "environment": environment,
                "schedule": shown,
                "next_run": next_run,
            },
        )


def _announce_prune(job: Job, config: Config) -> None:
    schedule = config.model.retention.schedule
    shown = schedule_text(schedule) if schedule is not None else None
    next_run = format_time(job.next_run_time) if job.next_run_time else None
    log.info(
        "stored reports pruned (%s): next at %s",
        shown,
        next_run,
        extra={"event": "retention.job", "schedule": shown, "next_run": next_run},
    )

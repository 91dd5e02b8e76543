"""Re-evaluating comparisons after a scan or push: store the report, work out which drift
opened and which resolved since the last evaluation, and write the outbox events, all in
one transaction."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from app.alerts.repository import AlertRepository
from app.config import ComparisonConfig, Config, SlackRoute, parse_duration
from app.db.base import utcnow
from app.db.models import AlertEvent, Evaluation, OpenDrift
from app.diff.model import SEVERITY_RANK, DriftItem
from app.errors import EnvparityError
from app.reports.render import json_text
from app.reports.service import Report, compare_snapshots, first_waiver_expiry, item_json
from app.reports.stored import rules_digest, still_holds
from app.runtime import Runtime
from app.snapshots.canonical import canonical_json, content_hash
from app.snapshots.repository import SnapshotRepository
from app.snapshots.schemas import format_time
from app.snapshots.service import Scanner
from app.snapshots.store import DocumentStore
from app.waivers.repository import WaiverRepository

log = logging.getLogger(__name__)

OPENED, RESOLVED, REMINDER = "drift.opened", "drift.resolved", "drift.reminder"


@dataclass(frozen=True)
class Target:
    """Where a comparison's events go: `slack` or `webhook:NAME`, from what severity."""

    key: str
    min_severity: str

    def wants(self, severity: str) -> bool:
        return SEVERITY_RANK[severity] >= SEVERITY_RANK[self.min_severity]


@dataclass(frozen=True)
class Outcome:
    comparison: str
    evaluation_id: int
    opened: int
    resolved: int
    reminded: int
    events: int


def targets_for(config: Config, comparison: ComparisonConfig) -> list[Target]:
    """The comparison's routes: `alerts.slack` and every webhook unless the comparison's
    own `alerts:` narrows or overrides them."""
    alerts = config.model.alerts
    out: list[Target] = []
    route = comparison.alerts.slack
    if route is not False:
        own = route if isinstance(route, SlackRoute) else None
        if alerts.slack is not None or (own is not None and own.webhook_url):
            severity = (own.min_severity if own else None) or (
                alerts.slack.min_severity if alerts.slack else "warning"
            )
            out.append(Target("slack", severity))
    chosen = comparison.alerts.webhooks
    for name, hook in alerts.named_webhooks().items():
        if chosen is None or name in chosen:
            out.append(Target(f"webhook:{name}", hook.min_severity))
    return out


def report_link(config: Config, comparison: ComparisonConfig) -> str | None:
    """The dashboard's page of the comparison, when the server's address is configured."""
    base = config.model.server.public_url
    if not base:
        return None
    return f"{base.rstrip('/')}/comparisons/{comparison.source}/{comparison.target}"


class Evaluator:
    """Evaluates comparisons, each in its own transaction (a unit-of-work edge)."""

    def __init__(self, config: Config, sessions: sessionmaker[Session]) -> None:
        self.config = config
        self.sessions = sessions

    def after_snapshot(self, environment: str) -> list[Outcome]:
        """Every comparison involving the environment; a failure is logged and left to the
        next catch-up (the snapshot is stored whatever happens here)."""
        return self._each(
            c for c in self.config.model.comparisons if environment in (c.source, c.target)
        )

    def catch_up(self) -> list[Outcome]:
        """Every comparison whose data or waivers changed since it was last evaluated (after
        a crash between a scan and its evaluation, or when a waiver expires)."""
        return self._each(iter(self.config.model.comparisons))

    def _each(self, comparisons: Any) -> list[Outcome]:
        outcomes = []
        for comparison in comparisons:
            try:
                with self.sessions.begin() as session:
                    outcome = evaluate(session, self.config, comparison, utcnow())
            except EnvparityError as exc:
                log.warning("evaluation of %s failed: %s", comparison.name, exc.message)
                continue
            except Exception:  # the snapshot is stored whatever happens: catch-up retries
                log.exception("evaluation of %s failed", comparison.name)
                continue
            if outcome is not None:
                outcomes.append(outcome)
        return outcomes


def evaluate(
    session: Session,
    config: Config,
    comparison: ComparisonConfig,
    now: datetime,
    force: bool = False,
    quiet: bool = False,
) -> Outcome | None:
    """Evaluates a comparison if its latest snapshots or the waivers changed since its last
    evaluation (or `force`); None if there was nothing new to judge. `quiet` keeps the open
    drift up to date without posting anything (`db rescrub` re-keys what it already knew)."""
    alerts = AlertRepository(session)
    state = alerts.lock(comparison.name)
    snapshots = SnapshotRepository(session)
    left, right = snapshots.latest(comparison.source), snapshots.latest(comparison.target)
    if left is None or right is None:
        return None
    waivers = WaiverRepository(session).state()
    rules = rules_digest(config)
    if not force and still_holds(state, left.id, right.id, waivers, rules, now):
        return None

    report = compare_snapshots(session, config, left, right, now)
    body = report.as_json()
    text = json_text(body)
    compared = canonical_json(report.result.resources)
    digest, resources = content_hash(text), content_hash(compared)
    DocumentStore(session).put({digest: text, resources: compared})
    summary = body["summary"]

    counting = {i.fingerprint: i for i in report.counting}
    already = alerts.open_drift(comparison.name)
    opened = [i for f, i in counting.items() if f not in already]
    resolved = [row for f, row in already.items() if f not in counting and _known(report, row)]
    reminders = [] if quiet else _reminders(config, already, counting, resolved, now)

    evaluation = alerts.add_evaluation(
        Evaluation(
            comparison=comparison.name,
            left_snapshot_id=left.id,
            right_snapshot_id=right.id,
            created_at=now,
            report=digest,
            resources=resources,
            unwaived=summary["unwaived"],
            critical=sum(i.severity == "critical" for i in counting.values()),
            warning=sum(i.severity == "warning" for i in counting.values()),
            info=sum(i.severity == "info" for i in counting.values()),
            parity=summary["parity"],
            unknown_sources=summary["unknown_sources"],
            opened=len(opened),
            resolved=len(resolved),
        )
    )
    alerts.close_rows(resolved)
    alerts.open_rows([_open_row(comparison.name, i, now) for i in opened])
    for row in reminders:
        row.reminded_at = now

    events = (
        []
        if quiet
        else _events(
            targets_for(config, comparison),
            _context(config, comparison, report, summary),
            evaluation.id,
            opened,
            resolved,
            [counting[row.fingerprint] for row in reminders],
            now,
        )
    )
    alerts.add_events(events)

    state.left_snapshot_id, state.right_snapshot_id = left.id, right.id
    state.waiver_state = waivers
    state.rules = rules
    state.valid_until = first_waiver_expiry(session, config, now)
    state.evaluated_at = now
    state.evaluation_id = evaluation.id
    session.flush()
    log.info(
        "%s evaluated: %d opened, %d resolved, %d events",
        comparison.name,
        len(opened),
        len(resolved),
        len(events),
    )
    return Outcome(
        comparison.name, evaluation.id, len(opened), len(resolved), len(reminders), len(events)
    )


def _known(report: Report, row: OpenDrift) -> bool:
    """Whether the report can vouch that the drift is gone: its resource was compared, or
    nothing on either side was unknown. A failed source never resolves anything."""
    if not report.result.unknown:
        return True
    return (row.category, row.resource_type, row.key) in set(report.result.resources)


def _reminders(
    config: Config,
    already: dict[str, OpenDrift],
    counting: dict[str, DriftItem],
    resolved: list[OpenDrift],
    now: datetime,
) -> list[OpenDrift]:
    every = config.model.alerts.repeat_after
    if not every:
        return []
    period = parse_duration(every)
    gone = {row.fingerprint for row in resolved}
    return [
        row
        for f, row in already.items()
        if f in counting
        and f not in gone
        and counting[f].severity == "critical"
        and now - (row.reminded_at or row.opened_at) >= period
    ]


def _open_row(comparison: str, item: DriftItem, now: datetime) -> OpenDrift:
    return OpenDrift(
        comparison=comparison,
        fingerprint=item.fingerprint,
        severity=item.severity,
        category=item.category,
        resource_type=item.resource_type,
        key=item.key,
        path=item.path,
        change=item.change,
        opened_at=now,
    )


def _resolved_json(row: OpenDrift) -> dict[str, Any]:
    return {
        "category": row.category,
        "resource_type": row.resource_type,
        "key": row.key,
        "path": row.path,
        "change": row.change,
        "severity": row.severity,
        "fingerprint": row.fingerprint,
        "opened_at": format_time(row.opened_at),
    }


def _context(
    config: Config, comparison: ComparisonConfig, report: Report, summary: dict[str, Any]
) -> dict[str, Any]:
    """What every event of one evaluation says besides its items."""
    return {
        "comparison": comparison.name,
        "source": comparison.source,
        "target": comparison.target,
        "left": report.left.as_json(),
        "right": report.right.as_json(),
        "parity": report.result.parity,
        "summary": summary,
        "report_url": report_link(config, comparison),
    }


def _event(
    kind: str,
    target: str,
    context: dict[str, Any],
    evaluation_id: int,
    items: list[dict[str, Any]],
    now: datetime,
) -> AlertEvent:
    payload = {"event": kind, **context, "items": items, "created_at": format_time(now)}
    return AlertEvent(
        comparison=context["comparison"],
        kind=kind,
        target=target,
        evaluation_id=evaluation_id,
        payload=json.dumps(payload, ensure_ascii=False),
        items=len(items),
        created_at=now,
        status="pending",
        attempts=0,
        next_attempt_at=now,
    )


def _events(
    targets: list[Target],
    context: dict[str, Any],
    evaluation_id: int,
    opened: list[DriftItem],
    resolved: list[OpenDrift],
    reminded: list[DriftItem],
    now: datetime,
) -> list[AlertEvent]:
    """Per target: one message for what opened, one for what resolved, one reminder (each
    only if any of its items is at or above the target's min_severity)."""
    events = []
    for target in targets:
        for kind, items in (
            (OPENED, [item_json(i) for i in opened if target.wants(i.severity)]),
            (RESOLVED, [_resolved_json(row) for row in resolved if target.wants(row.severity)]),
            (REMINDER, [item_json(i) for i in reminded if target.wants(i.severity)]),
        ):
            if items:
                events.append(_event(kind, target.key, context, evaluation_id, items, now))
    return events


def evaluating_scanner(runtime: Runtime) -> Scanner:
    """A scanner whose every stored snapshot re-evaluates the comparisons it is part of."""
    evaluator = Evaluator(runtime.config, runtime.sessions)
    return Scanner(
        runtime.config, runtime.sessions, runtime.redactor, on_stored=evaluator.after_snapshot
    )

"""What alerting makes of an evaluation: the drift that opened, resolved or is due a reminder
since the last one, kept in the open drift rows, and the outbox events for each target."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.alerts.repository import AlertRepository, OpenMark
from app.clock import format_time
from app.config import ComparisonConfig, Config, SlackRoute
from app.db.models import AlertEvent, OpenDrift
from app.diff.model import DriftItem
from app.reports.evaluations import Judgement
from app.reports.model import Report
from app.states import DeliveryStatus, EventKind, Severity


@dataclass(frozen=True)
class Target:
    """Where a comparison's events go: `slack` or `webhook:NAME`, from what severity."""

    key: str
    min_severity: Severity

    def wants(self, severity: str) -> bool:
        return Severity.rank_of(severity) >= self.min_severity.rank


@dataclass(frozen=True)
class Changes:
    """The open drift an evaluation changes: what opened, what resolved, what is reminded."""

    opened: list[DriftItem]
    resolved: list[OpenDrift]
    reminders: list[OpenDrift]


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
                alerts.slack.min_severity if alerts.slack else Severity.WARNING
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


def changes(
    alerts: AlertRepository, config: Config, judged: Judgement, quiet: bool = False
) -> Changes:
    """What the judgement opens, resolves and reminds of, against the comparison's open drift
    (reads only; no reminder is due when `quiet`)."""
    name, report, counting = judged.comparison.name, judged.report, judged.counting
    marks = alerts.open_marks(name)
    compared = set(report.result.resources)
    opened = [i for f, i in counting.items() if f not in marks]
    gone = {f for f, m in marks.items() if f not in counting and _known(report, compared, m)}
    due = set() if quiet else _reminders(config, marks, counting, judged.now)
    rows = alerts.open_drift(name, gone | due)  # whole rows only where needed
    return Changes(opened, [rows[f] for f in sorted(gone)], [rows[f] for f in sorted(due)])


def record(
    alerts: AlertRepository,
    config: Config,
    judged: Judgement,
    changed: Changes,
    evaluation_id: int,
    quiet: bool = False,
) -> int:
    """Writes the changes to the open drift and, unless `quiet`, the outbox events of the
    evaluation; the number of events."""
    comparison, now = judged.comparison, judged.now
    assert judged.summary is not None, "render() first"
    assert judged.item_texts is not None, "render() first"
    alerts.close_rows(changed.resolved)
    alerts.open_rows([_open_row(comparison.name, i, now) for i in changed.opened])
    for row in changed.reminders:
        row.reminded_at = now
    events = (
        []
        if quiet
        else _events(
            targets_for(config, comparison),
            _context(config, comparison, judged.report, judged.summary),
            evaluation_id,
            changed.opened,
            changed.resolved,
            [judged.counting[row.fingerprint] for row in changed.reminders],
            judged.item_texts,
            now,
        )
    )
    alerts.add_events(events)
    return len(events)


def _known(report: Report, compared: set[tuple[str, str, str]], mark: OpenMark) -> bool:
    """Whether the report can vouch that the drift is gone: its resource was compared, or
    nothing on either side was unknown. A failed source never resolves anything."""
    if not report.result.unknown:
        return True
    return (mark.category, mark.resource_type, mark.key) in compared


def _reminders(
    config: Config, marks: dict[str, OpenMark], counting: dict[str, DriftItem], now: datetime
) -> set[str]:
    """Critical drift still open `repeat_after` after it opened or was last reminded."""
    period = config.model.alerts.repeat_after
    if period is None:
        return set()
    return {
        f
        for f, mark in marks.items()
        if f in counting
        and counting[f].severity == Severity.CRITICAL
        and now - (mark.reminded_at or mark.opened_at) >= period
    }


def _open_row(comparison: str, item: DriftItem, now: datetime) -> dict[str, Any]:
    return {
        "comparison": comparison,
        "fingerprint": item.fingerprint,
        "severity": item.severity,
        "category": item.category,
        "resource_type": item.resource_type,
        "key": item.key,
        "path": item.path,
        "change": item.change,
        "opened_at": now,
    }


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
    kind: EventKind,
    target: str,
    context: dict[str, Any],
    evaluation_id: int,
    items: list[str],
    now: datetime,
) -> AlertEvent:
    """`items` are the items' JSON texts: the payload is the same text json.dumps would make
    of {"event", **context, "items", "created_at"}, assembled without encoding them again."""
    head = json.dumps({"event": kind, **context}, ensure_ascii=False)
    payload = (
        f'{head[:-1]}, "items": [{", ".join(items)}], '
        f'"created_at": {json.dumps(format_time(now))}}}'
    )
    return AlertEvent(
        comparison=context["comparison"],
        kind=kind,
        target=target,
        evaluation_id=evaluation_id,
        payload=payload,
        items=len(items),
        created_at=now,
        status=DeliveryStatus.PENDING,
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
    item_texts: dict[str, str],
    now: datetime,
) -> list[AlertEvent]:
    """Per target: one message for what opened, one for what resolved, one reminder (each
    only if any of its items is at or above the target's min_severity)."""
    events = []
    resolved_texts = {
        row.fingerprint: json.dumps(_resolved_json(row), ensure_ascii=False) for row in resolved
    }
    for target in targets:
        for kind, items in (
            (
                EventKind.OPENED,
                [item_texts[i.fingerprint] for i in opened if target.wants(i.severity)],
            ),
            (
                EventKind.RESOLVED,
                [resolved_texts[r.fingerprint] for r in resolved if target.wants(r.severity)],
            ),
            (
                EventKind.REMINDER,
                [item_texts[i.fingerprint] for i in reminded if target.wants(i.severity)],
            ),
        ):
            if items:
                events.append(_event(kind, target.key, context, evaluation_id, items, now))
    return events

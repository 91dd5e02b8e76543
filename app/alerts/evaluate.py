"""Re-evaluating comparisons after a scan or push: store the report, work out which drift
opened and which resolved since the last evaluation, and write the outbox events, all in
one transaction.

The comparison itself (the expensive part: thousands of resources compared, the report
rendered) is done before that transaction, from what the database held then; the write
transaction takes the comparison's lock, checks that the snapshots and waivers it was judged
from are still the latest, and only writes. On SQLite, whose writers take turns, the write
lock is held for the writing alone, not for the comparison."""

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
from app.db.models import AlertEvent, ComparisonState, Evaluation, OpenDrift
from app.diff.engine import compare
from app.diff.model import SEVERITY_RANK, DriftItem
from app.errors import EnvparityError
from app.reports.render import json_text
from app.reports.service import (
    Report,
    first_waiver_expiry,
    item_json,
    meta,
    record_first_seen,
    rules_of,
    side_of,
)
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
                outcome = self.evaluate(comparison)
            except EnvparityError as exc:
                log.warning("evaluation of %s failed: %s", comparison.name, exc.message)
                continue
            except Exception as exc:  # the snapshot is stored whatever happens
                log.exception(
                    "evaluation of %s failed; not tried again until its snapshots or rules change",
                    comparison.name,
                )
                self._mark_failed(comparison, exc)
                continue
            if outcome is not None:
                outcomes.append(outcome)
        return outcomes

    def evaluate(self, comparison: ComparisonConfig, now: datetime | None = None) -> Outcome | None:
        """Judges first (reads only), records when the drift was seen (its own short write),
        then writes the evaluation in one short transaction. If newer snapshots or waivers
        came meanwhile, judges again; after `RETRIES` such races, judges under the lock."""
        for _ in range(RETRIES):
            when = now or utcnow()
            with self.sessions.begin() as session:
                judged = judge(session, self.config, comparison, when)
            if judged is None:
                return None
            with self.sessions.begin() as session:
                record_first_seen(session, judged.report.result, judged.observed_at)
            judged.render()
            with self.sessions.begin() as session:
                outcome = write(session, self.config, judged)
            if not isinstance(outcome, _Stale):
                return outcome
            log.info("%s changed while it was judged: judging again", comparison.name)
        with self.sessions.begin() as session:
            return evaluate(session, self.config, comparison, now or utcnow())

    def _mark_failed(self, comparison: ComparisonConfig, exc: Exception) -> None:
        """Remembers that these snapshots could not be judged, so that the catch-up does not
        retry them forever (a poison snapshot)."""
        try:
            with self.sessions.begin() as session:
                snapshots = SnapshotRepository(session)
                left = snapshots.latest(comparison.source)
                right = snapshots.latest(comparison.target)
                if left is None or right is None:
                    return
                state = AlertRepository(session).lock(comparison.name)
                state.failed = json.dumps(
                    [left.id, right.id, rules_digest(self.config), type(exc).__name__]
                )
        except Exception:  # the database itself may be what failed: the next try says so
            log.warning("could not record that %s failed", comparison.name)


def failed_before(state: ComparisonState, left_id: int, right_id: int, rules: str) -> bool:
    if not state.failed:
        return False
    marked = json.loads(state.failed)
    return bool(marked[:3] == [left_id, right_id, rules])


RETRIES = 3


class _Stale:
    """What `write` says when the judgement is no longer about the latest data."""


STALE = _Stale()


@dataclass
class Judgement:
    """A comparison judged from the latest snapshots and waivers, before anything is written;
    `render` makes its texts once the drift's first_seen times are known."""

    comparison: ComparisonConfig
    left_id: int
    right_id: int
    waivers: str
    rules: str
    force: bool
    quiet: bool
    now: datetime
    report: Report
    counting: dict[str, DriftItem]
    observed_at: datetime  # the later snapshot's time: when the drift is known to stand
    text: str = ""
    compared: str = ""
    summary: dict[str, Any] | None = None
    item_texts: dict[str, str] | None = None  # fingerprint -> the item's JSON in events

    def render(self) -> None:
        body = self.report.as_json()
        self.text = json_text(body)
        self.compared = canonical_json(self.report.result.resources)
        self.summary = body["summary"]
        self.item_texts = {
            f: json.dumps(item_json(i), ensure_ascii=False) for f, i in self.counting.items()
        }


def judge(
    session: Session,
    config: Config,
    comparison: ComparisonConfig,
    now: datetime,
    force: bool = False,
    quiet: bool = False,
) -> Judgement | None:
    """Compares the comparison's latest snapshots, writing nothing; None if its last
    evaluation still judges them (unless `force`)."""
    snapshots = SnapshotRepository(session)
    left, right = snapshots.latest(comparison.source), snapshots.latest(comparison.target)
    if left is None or right is None:
        return None
    waivers = WaiverRepository(session).state()
    rules = rules_digest(config)
    state = session.get(ComparisonState, comparison.name)
    if (
        not force
        and state is not None
        and still_holds(state, left.id, right.id, waivers, rules, now)
    ):
        return None
    if not force and state is not None and failed_before(state, left.id, right.id, rules):
        return None  # it failed on these very snapshots: judged again once they change
    result = compare(
        side_of(snapshots, config, left),
        side_of(snapshots, config, right),
        rules_of(config, session, now),
        now,
    )
    report = Report(meta(left), meta(right), result, now)
    return Judgement(
        comparison=comparison,
        left_id=left.id,
        right_id=right.id,
        waivers=waivers,
        rules=rules,
        force=force,
        quiet=quiet,
        now=now,
        report=report,
        counting={i.fingerprint: i for i in report.counting},
        observed_at=max(left.taken_at, right.taken_at),
    )


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
    drift up to date without posting anything (`db rescrub` re-keys what it already knew).
    All in the caller's one transaction, the comparison's lock taken first (for the writes
    to come after the comparison, see Evaluator.evaluate)."""
    AlertRepository(session).lock(comparison.name)
    judged = judge(session, config, comparison, now, force, quiet)
    if judged is None:
        return None
    record_first_seen(session, judged.report.result, judged.observed_at)
    judged.render()
    outcome = write(session, config, judged)
    assert not isinstance(outcome, _Stale)  # judged under the lock: nothing came between
    return outcome


def write(session: Session, config: Config, judged: Judgement) -> Outcome | _Stale | None:
    """Stores a rendered judgement under the comparison's lock: the evaluation, its report,
    the open drift and the outbox events. STALE if newer snapshots or waivers came since the
    judgement; None if another evaluation of the same data was written meanwhile."""
    comparison, now, quiet = judged.comparison, judged.now, judged.quiet
    assert judged.summary is not None, "render() first"
    assert judged.item_texts is not None, "render() first"
    alerts = AlertRepository(session)
    state = alerts.lock(comparison.name)
    snapshots = SnapshotRepository(session)
    left, right = snapshots.latest(comparison.source), snapshots.latest(comparison.target)
    waivers = WaiverRepository(session).state()
    if (left.id if left else None, right.id if right else None, waivers) != (
        judged.left_id,
        judged.right_id,
        judged.waivers,
    ):
        return STALE
    rules = judged.rules
    if not judged.force and still_holds(
        state, judged.left_id, judged.right_id, waivers, rules, now
    ):
        return None  # evaluated by another process meanwhile

    report, summary, counting = judged.report, judged.summary, judged.counting
    digest, resources = content_hash(judged.text), content_hash(judged.compared)
    DocumentStore(session).put({digest: judged.text, resources: judged.compared})

    marks = alerts.open_marks(comparison.name)
    compared = set(report.result.resources)
    opened = [i for f, i in counting.items() if f not in marks]
    gone = {f for f, m in marks.items() if f not in counting and _known(report, compared, m)}
    due = set() if quiet else _reminders(config, marks, counting, now)
    rows = alerts.open_drift(comparison.name, gone | due)  # whole rows only where needed
    resolved = [rows[f] for f in sorted(gone)]
    reminders = [rows[f] for f in sorted(due)]

    evaluation = alerts.add_evaluation(
        Evaluation(
            comparison=comparison.name,
            left_snapshot_id=judged.left_id,
            right_snapshot_id=judged.right_id,
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
            judged.item_texts,
            now,
        )
    )
    alerts.add_events(events)

    state.left_snapshot_id, state.right_snapshot_id = judged.left_id, judged.right_id
    state.waiver_state = waivers
    state.rules = rules
    state.valid_until = first_waiver_expiry(session, config, now)
    state.evaluated_at = now
    state.evaluation_id = evaluation.id
    state.failed = None
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


def _known(report: Report, compared: set[tuple[str, str, str]], mark: Any) -> bool:
    """Whether the report can vouch that the drift is gone: its resource was compared, or
    nothing on either side was unknown. A failed source never resolves anything."""
    if not report.result.unknown:
        return True
    return (mark.category, mark.resource_type, mark.key) in compared


def _reminders(
    config: Config, marks: dict[str, Any], counting: dict[str, DriftItem], now: datetime
) -> set[str]:
    """Critical drift still open `repeat_after` after it opened or was last reminded."""
    every = config.model.alerts.repeat_after
    if not every:
        return set()
    period = parse_duration(every)
    return {
        f
        for f, mark in marks.items()
        if f in counting
        and counting[f].severity == "critical"
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
    kind: str,
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
            (OPENED, [item_texts[i.fingerprint] for i in opened if target.wants(i.severity)]),
            (
                RESOLVED,
                [resolved_texts[r.fingerprint] for r in resolved if target.wants(r.severity)],
            ),
            (REMINDER, [item_texts[i.fingerprint] for i in reminded if target.wants(i.severity)]),
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

"""What the dashboard's pages ask of the gate and the reports: one comparison's state, the
overview's cells, an environment's timeline with its drift counts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from app.alerts.repository import AlertRepository, severity_counts
from app.api.reports import report_url
from app.config import Config
from app.db.models import Evaluation
from app.gate.service import GateCache, GateResult
from app.reports.model import Report
from app.reports.service import compare_refs
from app.reports.stored import stored_report
from app.runtime import Runtime
from app.snapshots.repository import SnapshotRepository
from app.states import GateStatus
from app.waivers.repository import WaiverRepository
from app.web.history import DriftHistory
from app.web.repository import DashboardRepository
from app.web.timeline import Event, events

TIMELINE = 30  # events on an environment's timeline


def comparison_state(
    runtime: Runtime, gates: GateCache, source: str, target: str, now: datetime
) -> tuple[GateResult, Report | None]:
    """The gate's answer (through the API's cache, so the dashboard and CI agree and warm
    each other) and the report behind it. A stale or partial answer carries no report: that
    one is the report stored by the last evaluation while it holds, else computed here;
    `missing` has none."""
    gate = gates.evaluate(
        runtime.sessions, runtime.config, source, target, now, report_url(runtime, source, target)
    )
    return gate, _report_behind(runtime, gate, now)


def comparison_states(
    runtime: Runtime, gates: GateCache, pairs: Sequence[tuple[str, str]], now: datetime
) -> list[tuple[GateResult, Report | None]]:
    """`comparison_state` of several comparisons (the overview's cells), their gates judged
    together (GateCache.evaluate_many)."""
    asks = [(source, target, report_url(runtime, source, target)) for source, target in pairs]
    answers = gates.evaluate_many(runtime.sessions, runtime.config, asks, now)
    return [(gate, _report_behind(runtime, gate, now)) for gate in answers]


def _report_behind(runtime: Runtime, gate: GateResult, now: datetime) -> Report | None:
    report = gate.report
    if report is None and gate.status in (GateStatus.STALE, GateStatus.PARTIAL):
        source, target = gate.source, gate.target
        with runtime.sessions.begin() as session:
            stored = stored_report(session.connection(), runtime.config, source, target, now)
            report = (
                stored.report(now)
                if stored is not None
                else compare_refs(session, runtime.config, source, target, now)
            )
    return report


def timeline(
    session: Session, config: Config, history: DriftHistory, name: str, now: datetime
) -> list[Event]:
    """The environment's last scans and snapshots, oldest first, each snapshot with its
    unwaived drift in every declared comparison that involves the environment.

    The drift is the stored evaluation made when the snapshot arrived (the first one judged
    from it: app/alerts evaluates after every scan and push). A snapshot that has none (taken
    before alerting existed, or its evaluation failed) is judged here against the other
    side's latest snapshot at that time, with the reports service, and kept in `history`."""
    repo = SnapshotRepository(session)
    dashboard = DashboardRepository(session)
    out = events(repo.list_snapshots(name, TIMELINE), dashboard.scans(name, TIMELINE), TIMELINE)
    ids = [e.snapshot.id for e in out if e.snapshot is not None]
    first: dict[tuple[str, int, int], Evaluation] = {}
    for evaluation in AlertRepository(session).evaluations_of_snapshots(ids):  # oldest first
        first.setdefault((evaluation.comparison, 0, evaluation.left_snapshot_id), evaluation)
        first.setdefault((evaluation.comparison, 1, evaluation.right_snapshot_id), evaluation)
    waivers: str | None = None
    for comparison in config.model.comparisons:
        if name not in (comparison.source, comparison.target):
            continue
        mine_left = comparison.source == name
        other = comparison.target if mine_left else comparison.source
        for event in out:
            if event.snapshot is None:
                continue
            stored = first.get((comparison.name, 0 if mine_left else 1, event.snapshot.id))
            if stored is not None:
                event.drift[comparison.name] = severity_counts(stored)
                event.changes[comparison.name] = (stored.opened, stored.resolved)
                continue
            counterpart = repo.latest(other, at_or_before=event.snapshot.taken_at)
            if counterpart is None:
                continue
            left, right = (
                (event.snapshot, counterpart) if mine_left else (counterpart, event.snapshot)
            )
            waivers = waivers or WaiverRepository(session).state()
            event.drift[comparison.name] = history.counts(
                session, config, left, right, waivers, now
            )
    return out

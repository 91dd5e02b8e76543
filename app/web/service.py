"""What the dashboard's pages ask of the gate and the reports: one comparison's state, the
overview's cells, an environment's timeline with its drift counts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from app.api.reports import report_url
from app.config import Config
from app.gate.service import GateCache, GateResult
from app.reports.service import Report, compare_refs
from app.runtime import Runtime
from app.snapshots.repository import SnapshotRepository
from app.web.history import DriftHistory
from app.web.repository import DashboardRepository
from app.web.timeline import Event, events

TIMELINE = 30  # events on an environment's timeline


def comparison_state(
    runtime: Runtime, gates: GateCache, source: str, target: str, now: datetime
) -> tuple[GateResult, Report | None]:
    """The gate's answer (through the API's cache, so the dashboard and CI agree and warm
    each other) and the report behind it; a stale or partial answer carries no report, so
    that one is computed here; `missing` has none."""
    gate = gates.evaluate(
        runtime.sessions, runtime.config, source, target, now, report_url(runtime, source, target)
    )
    report = gate.report
    if report is None and gate.status in ("stale", "partial"):
        with runtime.sessions.begin() as session:
            report = compare_refs(session, runtime.config, source, target, now)
    return gate, report


def timeline(
    session: Session, config: Config, history: DriftHistory, name: str, now: datetime
) -> list[Event]:
    """The environment's last scans and snapshots, oldest first, each snapshot with its
    unwaived drift in every declared comparison that involves the environment, judged
    against the other side's latest snapshot at that time."""
    repo = SnapshotRepository(session)
    dashboard = DashboardRepository(session)
    out = events(repo.list_snapshots(name, TIMELINE), dashboard.scans(name, TIMELINE), TIMELINE)
    waivers = dashboard.waiver_state()
    for comparison in config.model.comparisons:
        if name not in (comparison.source, comparison.target):
            continue
        mine_left = comparison.source == name
        other = comparison.target if mine_left else comparison.source
        for event in out:
            if event.snapshot is None:
                continue
            counterpart = repo.latest(other, at_or_before=event.snapshot.taken_at)
            if counterpart is None:
                continue
            left, right = (
                (event.snapshot, counterpart) if mine_left else (counterpart, event.snapshot)
            )
            event.drift[comparison.name] = history.counts(
                session, config, left, right, waivers, now
            )
    return out

"""The promotion gate: judged from stored snapshots and waivers; never passes on missing data."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from app.config import Config, GateConfig, parse_duration
from app.db.models import Snapshot
from app.diff.model import SEVERITY_RANK
from app.reports.service import Report, compare_snapshots, item_json, sort_items
from app.snapshots.repository import SnapshotRepository
from app.snapshots.schemas import format_time

EXIT_BY_STATUS = {"pass": 0, "fail": 1, "stale": 2, "partial": 2, "missing": 2}


@dataclass
class GateResult:
    source: str
    target: str
    status: str  # pass | fail | stale | partial | missing
    reasons: list[str]
    summary: dict[str, Any] = field(default_factory=dict)
    failing: list[dict[str, Any]] = field(default_factory=list)
    report: Report | None = None
    report_url: str | None = None

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    @property
    def exit_code(self) -> int:
        return EXIT_BY_STATUS[self.status]

    def as_json(self) -> dict[str, Any]:
        return {
            "pass": self.passed,
            "status": self.status,
            "source": self.source,
            "target": self.target,
            "reasons": self.reasons,
            "summary": self.summary,
            "failing": self.failing,
            "report_url": self.report_url,
        }


def gate_config(config: Config, source: str, target: str) -> GateConfig:
    config.environment(source)
    config.environment(target)
    comparison = config.comparison(source, target)
    return comparison.gate if comparison is not None else GateConfig()


def evaluate(
    session: Session,
    config: Config,
    source: str,
    target: str,
    now: datetime,
    report_url: str | None = None,
    categories: set[str] | None = None,
) -> GateResult:
    """`categories` narrows the comparison's gated categories (`--category`)."""
    gate = gate_config(config, source, target)
    repo = SnapshotRepository(session)
    snapshots: dict[str, Snapshot | None] = {env: repo.latest(env) for env in (source, target)}
    missing = [env for env, s in snapshots.items() if s is None]
    if missing:
        reasons = [f"{env} has no snapshot" for env in missing]
        return GateResult(source, target, "missing", reasons, report_url=report_url)
    left, right = snapshots[source], snapshots[target]
    assert left is not None
    assert right is not None
    if gate.max_age:
        limit = parse_duration(gate.max_age)
        stale = [s for s in (left, right) if now - s.taken_at > limit]
        if stale:
            reasons = [
                f"{s.environment.name}'s latest snapshot #{s.id} was taken "
                f"{format_time(s.taken_at)}, older than max_age {gate.max_age}"
                for s in stale
            ]
            return GateResult(source, target, "stale", reasons, report_url=report_url)
    gated = set(gate.categories) & categories if categories else set(gate.categories)
    partial_reasons = []
    for snapshot in (left, right):
        for src in snapshot.sources:
            if src.status == "ok":
                continue
            blind = repo.source_categories(snapshot.environment.name, src.name) & gated
            if blind:
                partial_reasons.append(
                    f"{snapshot.environment.name}: source {src.name} failed ({src.error}); "
                    f"gated categories unknown: {', '.join(sorted(blind))}"
                )
    if partial_reasons:
        return GateResult(source, target, "partial", partial_reasons, report_url=report_url)
    report = compare_snapshots(session, config, left, right, now)
    threshold = SEVERITY_RANK[gate.fail_on]
    failing = [
        i
        for i in sort_items(report.counting)
        if i.category in gated and SEVERITY_RANK[i.severity] >= threshold
    ]
    summary = report.as_json()["summary"]
    if failing:
        reasons = [
            f"{len(failing)} unwaived drift item(s) at or above {gate.fail_on} "
            f"between {source} and {target}"
        ]
        return GateResult(
            source,
            target,
            "fail",
            reasons,
            summary,
            [item_json(i) for i in failing],
            report,
            report_url,
        )
    reasons = [f"no unwaived drift at or above {gate.fail_on} in {', '.join(sorted(gated))}"]
    return GateResult(source, target, "pass", reasons, summary, [], report, report_url)


__all__ = ["EXIT_BY_STATUS", "GateResult", "evaluate", "gate_config"]

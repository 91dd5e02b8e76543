"""What each dashboard page shows, built from reports, gate answers and snapshots (no HTTP)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlencode

from app.db.models import Scan, Snapshot
from app.diff.model import DriftItem, Unknown
from app.gate.service import GateResult
from app.reports.model import Report, SnapshotMeta, sort_items
from app.reports.render import short, unwaived_by_severity
from app.snapshots.store import StoredResource
from app.states import GateStatus, Severity
from collectors.base import CATEGORIES

WAIVED_CHOICES = ("", "hide", "only")  # every item | drift that counts only | documented only
MAX_VALUE = 400  # characters of a value shown in a table cell
MAX_RESOURCES = 2000  # rows of a snapshot page; a search narrows the rest

# The worst unwaived severity of a comparison, `none` without drift, `unknown` without data.
Worst = Severity | Literal["none", "unknown"]


def worst(items: list[DriftItem]) -> Worst:
    """The worst severity among the items, or `none`."""
    return Severity.worst(i.severity for i in items) or "none"


def value_text(value: Any) -> str | None:
    """A drift value on one line, or None when that side has nothing."""
    return None if value is None else short(value, MAX_VALUE)


# ----------------------------------------------------------------------------- overview


@dataclass
class Cell:
    """One declared comparison in the overview's matrix."""

    source: str
    target: str
    status: GateStatus
    reasons: list[str]
    worst: Worst
    parity: float | None
    unwaived: dict[Severity, int]
    taken_at: datetime | None  # the older side's snapshot: the age of the comparison's data
    now: datetime

    @property
    def age(self) -> timedelta | None:
        return None if self.taken_at is None else self.now - self.taken_at

    @property
    def url(self) -> str:
        return comparison_url(self.source, self.target)


def comparison_url(source: str, target: str, **query: str) -> str:
    kept = {k: v for k, v in query.items() if v}
    return f"/comparisons/{source}/{target}" + (f"?{urlencode(kept)}" if kept else "")


def cell(gate: GateResult, report: Report | None, now: datetime) -> Cell:
    if report is None:
        return Cell(
            gate.source, gate.target, gate.status, gate.reasons, "unknown", None, {}, None, now
        )
    return Cell(
        gate.source,
        gate.target,
        gate.status,
        gate.reasons,
        worst(report.counting),
        report.result.parity,
        unwaived_by_severity(report),
        min(report.left.taken_at, report.right.taken_at),
        now,
    )


@dataclass
class Matrix:
    sources: list[str]
    targets: list[str]
    cells: dict[tuple[str, str], Cell]


def matrix(order: list[str], cells: list[Cell]) -> Matrix:
    """Sources as rows and targets as columns, in the config's order of environments."""
    by_pair = {(c.source, c.target): c for c in cells}
    sources = [e for e in order if any(c.source == e for c in cells)]
    targets = [e for e in order if any(c.target == e for c in cells)]
    return Matrix(sources, targets, by_pair)


@dataclass
class EnvironmentRowView:
    name: str
    push_only: bool
    schedule: str | None
    latest: Snapshot | None
    last_scan: Scan | None
    now: datetime

    @property
    def age(self) -> timedelta | None:
        return None if self.latest is None else self.now - self.latest.taken_at


# ----------------------------------------------------------------------------- comparison


@dataclass(frozen=True)
class Filters:
    category: str = ""
    severity: Severity | Literal[""] = ""
    waived: str = ""

    @property
    def active(self) -> bool:
        return bool(self.category or self.severity or self.waived)

    def keep(self, item: DriftItem) -> bool:
        if self.category and item.category != self.category:
            return False
        if self.severity and item.severity != self.severity:
            return False
        if self.waived == "hide":
            return item.counts
        if self.waived == "only":
            return not item.counts
        return True


@dataclass
class Group:
    category: str
    items: list[DriftItem]


@dataclass
class Summary:
    unwaived: dict[Severity, int]
    counting: int
    waived: int
    tolerated: int
    parity: float
    compared: int
    worst: Worst


def summary(report: Report) -> Summary:
    items = report.result.items
    counting = report.counting
    tolerated = sum(1 for i in items if i.tolerated)
    return Summary(
        unwaived_by_severity(report),
        len(counting),
        len(items) - len(counting) - tolerated,
        tolerated,
        report.result.parity,
        report.result.compared,
        worst(counting),
    )


@dataclass
class ComparisonView:
    source: str
    target: str
    gate: GateResult
    fail_on: Severity
    max_age: str | None
    filters: Filters
    now: datetime
    report: Report | None = None
    summary: Summary | None = None

    @property
    def left(self) -> SnapshotMeta | None:
        return None if self.report is None else self.report.left

    @property
    def right(self) -> SnapshotMeta | None:
        return None if self.report is None else self.report.right

    @property
    def unknown(self) -> list[Unknown]:
        return [] if self.report is None else self.report.result.unknown

    @property
    def command(self) -> str:
        return f"envparity gate {self.source} {self.target}"


def comparison_view(
    gate: GateResult,
    fail_on: Severity,
    max_age: str | None,
    report: Report | None,
    filters: Filters,
    now: datetime,
) -> ComparisonView:
    view = ComparisonView(gate.source, gate.target, gate, fail_on, max_age, filters, now)
    if report is not None:
        view.report = report
        view.summary = summary(report)
    return view


def grouped(report: Report, filters: Filters) -> dict[str, Any]:
    """The report's items that pass the filters, by category (in the usual order), counting
    drift first and worst first within each: the context of comparison_items.html."""
    by_category: dict[str, list[DriftItem]] = {c: [] for c in CATEGORIES}
    shown = 0
    for item in sort_items(report.result.items):
        if filters.keep(item):
            by_category.setdefault(item.category, []).append(item)
            shown += 1
    return {
        "groups": [Group(c, items) for c, items in by_category.items() if items],
        "shown": shown,
        "total": len(report.result.items),
        "filters": filters,
        "source": report.left.environment,
        "target": report.right.environment,
    }


# ----------------------------------------------------------------------------- snapshot


@dataclass(slots=True)
class ResourceRow:
    source: str
    resource_type: str
    key: str
    attributes: str  # canonical JSON


@dataclass
class ResourceGroup:
    category: str
    rows: list[ResourceRow]


@dataclass
class SnapshotView:
    snapshot: Snapshot
    q: str
    category: str
    groups: list[ResourceGroup]
    matched: int
    total: int

    @property
    def truncated(self) -> bool:
        return self.matched > MAX_RESOURCES


def snapshot_view(
    snapshot: Snapshot, resources: dict[str, list[StoredResource]], q: str, category: str
) -> SnapshotView:
    """A snapshot's resources by category; `q` keeps those whose type, key or attributes
    contain it (case-insensitive)."""
    needle = q.strip().casefold()
    by_category: dict[str, list[ResourceRow]] = {c: [] for c in CATEGORIES}
    total = matched = 0
    for source, stored in sorted(resources.items()):
        for r in stored:
            total += 1
            if category and r.category != category:
                continue
            if needle and needle not in f"{r.resource_type}\0{r.key}\0{r.body}".casefold():
                continue
            matched += 1
            if matched <= MAX_RESOURCES:
                by_category.setdefault(r.category, []).append(
                    ResourceRow(source, r.resource_type, r.key, r.body)
                )
    groups = [
        ResourceGroup(c, sorted(rows, key=lambda r: (r.resource_type, r.key)))
        for c, rows in by_category.items()
        if rows
    ]
    return SnapshotView(snapshot, q, category, groups, matched, total)

"""What a report is: two snapshots' metadata and the engine's result, as JSON, sorted and
filtered. Pure: no database, no config."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from app.clock import format_time, parse_time
from app.diff.model import DiffResult, DriftItem, Unknown
from app.states import Change, Severity, SideName, SnapshotStatus

_CHANGES = {c.value: c for c in Change}
_SEVERITIES = {s.value: s for s in Severity}


@dataclass(frozen=True)
class SnapshotMeta:
    environment: str
    snapshot_id: int
    taken_at: datetime
    status: SnapshotStatus
    # What the reports call this side: the environment, or the ref as given when both sides
    # are one environment (`production@baseline` against `production`); see `labelled`.
    label: str | None = None

    @property
    def name(self) -> str:
        """The side's label in columns and titles."""
        return self.label or self.environment

    def as_json(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "snapshot_id": self.snapshot_id,
            "taken_at": format_time(self.taken_at),
            "status": self.status,
            "label": self.name,
        }


@dataclass
class Report:
    left: SnapshotMeta
    right: SnapshotMeta
    result: DiffResult
    generated_at: datetime

    @property
    def counting(self) -> list[DriftItem]:
        return [i for i in self.result.items if i.counts]

    def summary(self) -> dict[str, Any]:
        """The report's counts (its JSON's `summary`), without rendering its items."""
        listed = [i for i in self.result.items if not i.tolerated]
        by_severity = dict.fromkeys(Severity.worst_first(), 0)
        by_category: dict[str, int] = {}
        for item in listed:
            by_severity[item.severity] += 1
            by_category[item.category] = by_category.get(item.category, 0) + 1
        return {
            "items": len(listed),
            "unwaived": len(self.counting),
            "tolerated": len(self.result.items) - len(listed),
            "by_severity": by_severity,
            "by_category": dict(sorted(by_category.items())),
            "parity": self.result.parity,
            "compared": self.result.compared,
            "unknown_sources": len(self.result.unknown),
        }

    def as_json(self) -> dict[str, Any]:
        return {
            "comparison": self.result.comparison,
            "left": self.left.as_json(),
            "right": self.right.as_json(),
            "summary": self.summary(),
            "unknown": [
                {
                    "side": u.side,
                    "environment": u.environment,
                    "source": u.source,
                    "error": u.error,
                    "resources": u.resources,
                }
                for u in self.result.unknown
            ],
            "items": [item_json(i) for i in sort_items(self.result.items)],
        }


def report_of_json(
    body: dict[str, Any], resources: list[tuple[str, str, str]] | None, now: datetime
) -> Report:
    """A report back from its JSON (`Report.as_json`) and the resources it compared (None:
    read later, through the result's `loader`)."""

    def meta(side: dict[str, Any]) -> SnapshotMeta:
        taken = parse_time(side["taken_at"])
        status = SnapshotStatus(side["status"])
        label = side.get("label")
        return SnapshotMeta(side["environment"], side["snapshot_id"], taken, status, label)

    items = [item_of_json(i) for i in body["items"]]
    unknown = [Unknown(**{**u, "side": SideName(u["side"])}) for u in body["unknown"]]
    differing = len({(i.resource_type, i.key) for i in items if i.counts})
    compared = body["summary"]["compared"]
    result = DiffResult(body["comparison"], items, unknown, compared, differing, resources)
    return Report(meta(body["left"]), meta(body["right"]), result, now)


def item_of_json(data: dict[str, Any]) -> DriftItem:
    """A drift item back from its JSON (`item_json`); takes `data` over (pass a copy to keep
    it)."""
    seen = data.pop("first_seen")
    data["change"], data["severity"] = _CHANGES[data["change"]], _SEVERITIES[data["severity"]]
    return DriftItem(**data, first_seen=parse_time(seen) if seen else None)


def labelled(report: Report, left_ref: str, right_ref: str) -> Report:
    """The report with its sides labelled by the refs as given when both sides are one
    environment (a comparison over time: `production@baseline` and `production`, not
    `production` twice); across environments the environments' names are the labels."""
    if report.left.environment != report.right.environment:
        return report
    left, right = left_ref.strip(), right_ref.strip()
    return Report(
        replace(report.left, label=left),
        replace(report.right, label=right),
        report.result,
        report.generated_at,
    )


def only_categories(report: Report, categories: set[str]) -> Report:
    """The report restricted to some categories (`--category`)."""
    result = report.result
    items = [i for i in result.items if i.category in categories]
    resources = [r for r in result.resources if r[0] in categories]
    differing = {(i.resource_type, i.key) for i in items if i.counts}
    return Report(
        report.left,
        report.right,
        DiffResult(
            result.comparison, items, result.unknown, len(resources), len(differing), resources
        ),
        report.generated_at,
    )


def gate_view(report: Report, failing: set[str]) -> Report:
    """The report as the gate judged it: drift that fails the gate, plus the documented
    (waived, tolerated) differences; drift below `fail_on` or outside the gated categories
    is left out, so a passing gate's JUnit has no failing case."""
    result = report.result
    items = [i for i in result.items if i.fingerprint in failing or not i.counts]
    differing = {(i.resource_type, i.key) for i in items if i.counts}
    view = DiffResult(
        result.comparison, items, result.unknown, result.compared, len(differing), result.resources
    )
    return Report(report.left, report.right, view, report.generated_at)


def item_json(item: DriftItem) -> dict[str, Any]:
    return {
        "category": item.category,
        "resource_type": item.resource_type,
        "key": item.key,
        "path": item.path,
        "change": item.change,
        "left": item.left,
        "right": item.right,
        "severity": item.severity,
        "waived": item.waived,
        "waiver": item.waiver,
        "tolerated": item.tolerated,
        "tolerance": item.tolerance,
        "detail": item.detail,
        "first_seen": format_time(item.first_seen) if item.first_seen else None,
        "fingerprint": item.fingerprint,
    }


def sort_items(items: list[DriftItem]) -> list[DriftItem]:
    """Counting drift first, worst first; then waived, then tolerated."""
    worst_first = {s: -s.rank for s in Severity}
    return sorted(
        items,
        key=lambda i: (i.tolerated, i.waived, worst_first[i.severity], i.category, i.key, i.path),
    )

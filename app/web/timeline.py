"""An environment's timeline: its scans and snapshots in time order, and the geometry of the
inline SVG chart drawn from them on the server (no script, no chart library)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from app.db.models import Scan, Snapshot
from app.states import ScanStatus, Severity, SourceStatus


@dataclass
class Event:
    """One scan or pushed snapshot: what happened, and the drift it showed."""

    at: datetime
    status: ScanStatus  # a snapshot's is one of a finished scan's
    snapshot: Snapshot | None = None
    scan: Scan | None = None
    # comparison name -> unwaived drift items by severity, against the other side's
    # latest snapshot at that time; absent when the other side had no snapshot yet
    drift: dict[str, dict[Severity, int]] = field(default_factory=dict)
    # comparison name -> (opened, resolved) drift items, from the stored evaluation
    changes: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def origin(self) -> str:
        if self.scan is not None:
            return f"scan ({self.scan.trigger})"
        return self.snapshot.origin if self.snapshot is not None else ""

    @property
    def failed_sources(self) -> list[str]:
        if self.snapshot is None:
            return []
        return [s.name for s in self.snapshot.sources if s.status != SourceStatus.OK]

    @property
    def error(self) -> str | None:
        return self.scan.error if self.scan is not None else None

    @property
    def totals(self) -> dict[Severity, int]:
        out = dict.fromkeys(Severity.worst_first(), 0)
        for counts in self.drift.values():
            for severity, n in counts.items():
                out[severity] += n
        return out


def events(snapshots: list[Snapshot], scans: list[Scan], limit: int) -> list[Event]:
    """Snapshots (with the scan that took them, if any) and scans that stored nothing,
    oldest first, the last `limit` of them."""
    by_snapshot = {s.snapshot_id: s for s in scans if s.snapshot_id is not None}
    out = [Event(s.taken_at, ScanStatus(s.status), s, by_snapshot.get(s.id)) for s in snapshots]
    out += [
        Event(s.started_at, ScanStatus(s.status), None, s) for s in scans if s.snapshot_id is None
    ]
    out.sort(key=lambda e: (e.at, e.snapshot.id if e.snapshot else 0))
    return out[-limit:]


# ----------------------------------------------------------------------------- the chart

WIDTH, HEIGHT = 720, 220
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 12, 44  # margins: y labels left, status marks and dates below


@dataclass
class Segment:
    severity: Severity
    y: float
    height: float


@dataclass
class Bar:
    x: float
    width: float
    cx: float  # the status mark's centre
    status: ScanStatus
    label: str  # what a pointer hover or a screen reader's tooltip says
    segments: list[Segment]
    href: str | None


@dataclass
class Chart:
    width: int
    height: int
    plot_top: float
    plot_bottom: float
    plot_left: float
    plot_right: float
    y_max: int
    ticks: list[tuple[float, int]]  # (y, value) of the horizontal grid lines
    bars: list[Bar]
    first: datetime | None
    last: datetime | None
    status_y: float


def _ticks(y_max: int) -> list[int]:
    if y_max <= 4:
        return list(range(y_max + 1))
    step = max(1, round(y_max / 4))
    values = list(range(0, y_max + 1, step))
    return values if values[-1] == y_max else [*values, y_max]


def chart(timeline: list[Event]) -> Chart:
    """Stacked bars of unwaived drift (critical at the bottom) over one status mark per event."""
    plot_bottom = HEIGHT - BOTTOM
    plot_right = WIDTH - RIGHT
    height = plot_bottom - TOP
    y_max = max([sum(e.totals.values()) for e in timeline] + [1])
    slot = (plot_right - LEFT) / max(len(timeline), 1)
    width = max(min(slot * 0.7, 48), 2)
    bars = []
    for index, event in enumerate(timeline):
        x = LEFT + index * slot + (slot - width) / 2
        y = float(plot_bottom)
        segments = []
        totals = event.totals
        for severity in Severity.worst_first():
            h = height * totals[severity] / y_max
            if h:
                y -= h
                segments.append(Segment(severity, round(y, 2), round(h, 2)))
        counts = ", ".join(f"{n} {s}" for s, n in totals.items() if n) or "no unwaived drift"
        what = (
            f"snapshot #{event.snapshot.id}"
            if event.snapshot
            else f"scan #{event.scan.id}"
            if event.scan
            else ""
        )
        bars.append(
            Bar(
                round(x, 2),
                round(width, 2),
                round(x + width / 2, 2),
                event.status,
                f"{event.at:%Y-%m-%d %H:%M} UTC, {what}: {event.status}; {counts}",
                segments,
                f"/snapshots/{event.snapshot.id}" if event.snapshot else None,
            )
        )
    ticks = [(round(plot_bottom - height * v / y_max, 2), v) for v in _ticks(y_max)]
    return Chart(
        WIDTH,
        HEIGHT,
        TOP,
        plot_bottom,
        LEFT,
        plot_right,
        y_max,
        ticks,
        bars,
        timeline[0].at if timeline else None,
        timeline[-1].at if timeline else None,
        plot_bottom + 14,
    )

"""The promotion gate: judged from stored snapshots and waivers; never passes on missing data.

The judgement is pure (`refusal`, `verdict`: facts and a report in, a GateResult out);
`evaluate` loads the facts and the report from the database, and `GateCache` keeps answers."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.orm import Session, sessionmaker

from app.clock import format_duration, format_time
from app.config import Config, GateConfig
from app.db.models import Snapshot
from app.db.types import UTCDateTime
from app.reports.model import Report, SnapshotMeta, item_json, sort_items
from app.reports.service import (
    InFlight,
    SideCache,
    compare_snapshots,
    first_waiver_expiry,
    meta,
)
from app.reports.stored import latest_snapshot_sql, stored_report
from app.snapshots.repository import SnapshotRepository
from app.states import GateStatus, Severity, SourceStatus
from app.waivers.state import WAIVER_STATE_SQL

# By the status as the gate or a server's `X-Envparity-Gate` header says it.
EXIT_BY_STATUS: dict[str, int] = {
    GateStatus.PASS: 0,
    GateStatus.FAIL: 1,
    GateStatus.STALE: 2,
    GateStatus.PARTIAL: 2,
    GateStatus.MISSING: 2,
}


# A reason that does not decide the status but must be seen (printed on stderr too).
WARNING = "warning: "


@dataclass
class GateResult:
    source: str
    target: str
    status: GateStatus
    reasons: list[str]
    summary: dict[str, Any] = field(default_factory=dict)
    failing: list[dict[str, Any]] = field(default_factory=list)
    report: Report | None = None
    report_url: str | None = None
    # The rule it was judged by (None from a server's JSON answer, which does not carry it).
    fail_on: Severity | None = None
    categories: list[str] = field(default_factory=list)  # the gated categories

    @cached_property
    def json_body(self) -> bytes:
        """The JSON answer, serialized once (a cached answer is served many times)."""
        return json.dumps(self.as_json()).encode()

    @property
    def passed(self) -> bool:
        return self.status == GateStatus.PASS

    @property
    def exit_code(self) -> int:
        return EXIT_BY_STATUS[self.status]

    @property
    def warnings(self) -> list[str]:
        """The reasons that warn (nothing was compared...), without their `warning: `."""
        return [r.removeprefix(WARNING) for r in self.reasons if r.startswith(WARNING)]

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


@dataclass(frozen=True)
class FailedSource:
    name: str
    error: str | None
    categories: frozenset[str]  # what it reported the last time it succeeded; all if never


@dataclass(frozen=True)
class GateSide:
    """An environment's latest snapshot, as far as the gate needs it."""

    snapshot: SnapshotMeta
    failed: tuple[FailedSource, ...]  # its sources that failed, in the snapshot's order


@dataclass(frozen=True)
class GateFacts:
    """Everything the gate judges from besides the report."""

    source: str
    target: str
    gate: GateConfig
    gated: frozenset[str]  # the gated categories (narrowed by `--category`)
    sides: Mapping[str, GateSide | None]  # by environment; None: it has no snapshot
    report_url: str | None = None


def refusal(facts: GateFacts, now: datetime) -> GateResult | None:
    """Why the gate cannot judge, from the latest snapshots alone: a side has none
    (`missing`), one is older than `max_age` (`stale`), or a source failed that a gated
    category depends on (`partial`). None when it can: then `verdict` judges the report."""
    source, target, gate, url = facts.source, facts.target, facts.gate, facts.report_url

    def refused(status: GateStatus, reasons: list[str]) -> GateResult:
        return GateResult(
            source,
            target,
            status,
            reasons,
            report_url=url,
            fail_on=gate.fail_on,
            categories=sorted(facts.gated),
        )

    missing = [env for env, side in facts.sides.items() if side is None]
    if missing:
        reasons = [f"{env} has no snapshot" for env in missing]
        return refused(GateStatus.MISSING, reasons)
    sides = [side for side in (facts.sides[source], facts.sides[target]) if side is not None]
    limit = gate.max_age
    if limit is not None:  # `0s` is a limit too
        stale = [s.snapshot for s in sides if now - s.snapshot.taken_at > limit]
        if stale:
            reasons = [
                f"{s.environment}'s latest snapshot #{s.snapshot_id} was taken "
                f"{format_time(s.taken_at)}, older than max_age {format_duration(limit)}"
                for s in stale
            ]
            return refused(GateStatus.STALE, reasons)
    partial_reasons = []
    for side in sides:
        for src in side.failed:
            blind = src.categories & facts.gated
            if blind:
                partial_reasons.append(
                    f"{side.snapshot.environment}: source {src.name} failed ({src.error}); "
                    f"gated categories unknown: {', '.join(sorted(blind))}"
                )
    if partial_reasons:
        return refused(GateStatus.PARTIAL, partial_reasons)
    return None


def verdict(facts: GateFacts, report: Report) -> GateResult:
    """Pass or fail: whether the report has unwaived drift at or above `fail_on` in the
    gated categories."""
    source, target, gate, gated = facts.source, facts.target, facts.gate, facts.gated
    threshold = Severity.rank_of(gate.fail_on)
    failing = [
        i
        for i in sort_items(report.counting)
        if i.category in gated and Severity.rank_of(i.severity) >= threshold
    ]
    summary = report.summary()
    warnings = nothing_compared(facts, report)
    if failing:
        reasons = [
            f"{len(failing)} unwaived drift item(s) at or above {gate.fail_on} "
            f"between {source} and {target}",
            *warnings,
        ]
        status, failed = GateStatus.FAIL, [item_json(i) for i in failing]
    else:
        judged = ", ".join(sorted(gated)) or "no category"
        reasons = [f"no unwaived drift at or above {gate.fail_on} in {judged}", *warnings]
        status, failed = GateStatus.PASS, []
    return GateResult(
        source,
        target,
        status,
        reasons,
        summary,
        failed,
        report,
        facts.report_url,
        gate.fail_on,
        sorted(gated),
    )


def nothing_compared(facts: GateFacts, report: Report) -> list[str]:
    """A warning when the gate judged nothing: no gated category is left (`--category` names
    none of the gate's), or no resource of the gated categories is on either side (a category
    no source collects). Such a gate passes, but it must not pass silently."""
    if not facts.gated:
        return [
            f"{WARNING}nothing was compared: none of the gate's categories "
            f"({', '.join(facts.gate.categories)}) is among those asked for with --category"
        ]
    if report.result.categories & facts.gated:
        return []
    gated = ", ".join(sorted(facts.gated))
    return [
        f"{WARNING}nothing was compared: neither {facts.source} nor {facts.target} has any "
        f"resource in {gated} (check --category and the sources' categories)"
    ]


def evaluate(
    session: Session,
    config: Config,
    source: str,
    target: str,
    now: datetime,
    report_url: str | None = None,
    categories: set[str] | None = None,
    sides: SideCache | None = None,
    latest: Mapping[str, Snapshot] | None = None,
) -> GateResult:
    """The gate judged from the database. `categories` narrows the comparison's gated
    categories (`--category`); `sides` keeps the sides loaded for a comparison made now;
    `latest`, the environments' latest snapshots when already loaded (the overview judges
    every comparison from one query)."""
    gate = gate_config(config, source, target)
    repo = SnapshotRepository(session)
    if latest is None:
        latest = repo.latest_of((source, target))
    snapshots = {source: latest.get(source), target: latest.get(target)}
    gated = set(gate.categories) & categories if categories else set(gate.categories)
    gate_sides = {env: _side(repo, s) if s is not None else None for env, s in snapshots.items()}
    facts = GateFacts(source, target, gate, frozenset(gated), gate_sides, report_url)
    refused = refusal(facts, now)
    if refused is not None:
        return refused
    left, right = snapshots[source], snapshots[target]
    assert left is not None
    assert right is not None
    # The report stored by the last evaluation when it still holds (the usual case: every
    # scan evaluates); else the comparison is made now.
    stored = stored_report(session.connection(), config, source, target, now)
    report = (
        stored.report(now)
        if stored is not None
        else compare_snapshots(session, config, left, right, now, sides)
    )
    return verdict(facts, report)


def _side(repo: SnapshotRepository, snapshot: Snapshot) -> GateSide:
    env = snapshot.environment.name
    failed = tuple(
        FailedSource(src.name, src.error, frozenset(repo.source_categories(env, src.name)))
        for src in snapshot.sources
        if src.status != SourceStatus.OK
    )
    return GateSide(meta(snapshot), failed)


# ----------------------------------------------------------------------------- cached gate


_latest = latest_snapshot_sql
# Every answer is worth keeping: a `stale` one stays stale until a side's latest snapshot
# changes (its reasons name the snapshots' times, not their age), a `missing` one until the
# first snapshot; both change the key.
_KEPT = (
    GateStatus.PASS,
    GateStatus.FAIL,
    GateStatus.PARTIAL,
    GateStatus.STALE,
    GateStatus.MISSING,
)
# source, target, narrowed categories, both latest snapshots, the stored waivers' state, and
# whether both snapshots are within max_age (an answer judged fresh is not served once they
# are older, nor a stale one while they are not)
GateKey = tuple[
    str, str, tuple[str, ...], int | None, int | None, int, int | None, datetime | None, bool
]

# Everything a cached answer depends on, in one round trip.
_HEAD = text(
    f"SELECT {_latest('id', 'source')} AS left_id, {_latest('taken_at', 'source')} AS left_taken,"
    f" {_latest('id', 'target')} AS right_id, {_latest('taken_at', 'target')} AS right_taken,"
    f" {WAIVER_STATE_SQL}"
).columns(left_taken=UTCDateTime(), right_taken=UTCDateTime(), waiver_newest=UTCDateTime())


class GateCache:
    """Gate answers of this process, by the snapshots and waivers they were judged from.

    A CI fleet asks the same question far more often than the data changes: an answer is
    reused while both latest snapshots and the stored waivers are unchanged, until the
    first waiver it relied on expires. Whether the snapshots are within `max_age` is judged
    on every request, from the same one query: a `stale` answer is then served from the
    cache as fast as a `pass`."""

    def __init__(self, size: int = 256, sides: SideCache | None = None) -> None:
        self.size = size
        self.sides = sides  # the process's loaded sides (kept_sides), for what it judges
        self.entries: dict[GateKey, tuple[GateResult, datetime | None]] = {}
        self.lock = threading.Lock()
        # Answers being judged, by key: when new data lands, the many requests that find no
        # answer for it wait for the one judgement rather than each comparing afresh.
        self.judging: InFlight[GateResult] = InFlight()

    def evaluate(
        self,
        sessions: sessionmaker[Session],
        config: Config,
        source: str,
        target: str,
        now: datetime,
        report_url: str | None = None,
        categories: set[str] | None = None,
    ) -> GateResult:
        key, cached = self.peek(sessions, config, source, target, now, categories)
        if cached is not None:
            return cached
        return self.fill(sessions, config, source, target, now, key, report_url, categories)

    def peek(
        self,
        sessions: sessionmaker[Session],
        config: Config,
        source: str,
        target: str,
        now: datetime,
        categories: set[str] | None = None,
    ) -> tuple[GateKey, GateResult | None]:
        """One small query: the cache key, and the cached answer if it still holds."""
        engine = sessions.kw["bind"]
        with engine.connect() as conn:  # Core, not a Session: this runs on every request
            return self._peek(conn, config, source, target, now, categories)

    def _peek(
        self,
        conn: Connection,
        config: Config,
        source: str,
        target: str,
        now: datetime,
        categories: set[str] | None,
    ) -> tuple[GateKey, GateResult | None]:
        gate = gate_config(config, source, target)
        head = conn.execute(_HEAD, {"source": source, "target": target}).one()
        limit = gate.max_age
        fresh = limit is None or all(
            taken is not None and now - taken <= limit
            for taken in (head.left_taken, head.right_taken)
        )
        key = (
            source,
            target,
            tuple(sorted(categories or ())),
            head.left_id,
            head.right_id,
            head.waiver_count,
            head.waiver_max,
            head.waiver_newest,
            fresh,
        )
        with self.lock:
            cached = self.entries.get(key)
        if cached is None:
            return key, None
        result, valid_until = cached
        return key, result if valid_until is None or now < valid_until else None

    def fill(
        self,
        sessions: sessionmaker[Session],
        config: Config,
        source: str,
        target: str,
        now: datetime,
        key: GateKey,
        report_url: str | None = None,
        categories: set[str] | None = None,
    ) -> GateResult:
        """Judges the gate from the database and keeps the answer under `key`; a request
        that finds the same key being judged waits for that judgement."""
        return self.judging.result(
            key,
            lambda: self._judge(sessions, config, source, target, now, key, report_url, categories),
        )

    def _judge(
        self,
        sessions: sessionmaker[Session],
        config: Config,
        source: str,
        target: str,
        now: datetime,
        key: GateKey,
        report_url: str | None,
        categories: set[str] | None,
    ) -> GateResult:
        with sessions.begin() as session:
            result = evaluate(
                session, config, source, target, now, report_url, categories, self.sides
            )
            valid_until = first_waiver_expiry(session, config, now)
        self._keep(key, result, valid_until)
        return result

    def _keep(self, key: GateKey, result: GateResult, valid_until: datetime | None) -> None:
        # judged on the very boundary of max_age: kept only under the key it agrees with
        agrees = (result.status == GateStatus.STALE) != key[-1]
        if result.status in _KEPT and (agrees or result.status == GateStatus.MISSING):
            with self.lock:
                if len(self.entries) >= self.size:
                    self.entries.pop(next(iter(self.entries)))
                self.entries[key] = (result, valid_until)

    def evaluate_many(
        self,
        sessions: sessionmaker[Session],
        config: Config,
        asks: Sequence[tuple[str, str, str | None]],
        now: datetime,
    ) -> list[GateResult]:
        """The gates of several (source, target, report_url) at once, as the overview asks:
        the cached answers found on one connection, the others judged in one transaction,
        from one query for the latest snapshots of all their environments."""
        engine = sessions.kw["bind"]
        keys: list[GateKey] = []
        results: list[GateResult | None] = []
        with engine.connect() as conn:
            for source, target, _ in asks:
                key, cached = self._peek(conn, config, source, target, now, None)
                keys.append(key)
                results.append(cached)
        todo = [i for i, result in enumerate(results) if result is None]
        if todo:
            with sessions.begin() as session:
                envs = [env for i in todo for env in asks[i][:2]]
                latest = SnapshotRepository(session).latest_of(envs)
                valid_until = first_waiver_expiry(session, config, now)
                for i in todo:
                    source, target, url = asks[i]
                    judged = evaluate(
                        session, config, source, target, now, url, None, self.sides, latest
                    )
                    self._keep(keys[i], judged, valid_until)
                    results[i] = judged
        return [r for r in results if r is not None]

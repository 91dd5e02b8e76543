"""Reports stored by the evaluation after each scan: written once, then served to `diff`,
the API and the dashboard for as long as nothing they depend on has changed.

Core SQL only (no ORM): `envparity diff` of a declared comparison answers from here
without loading the ORM, the models or the diff engine."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import Connection, text

from app import __version__
from app.config import Config
from app.db.types import UTCDateTime
from app.reports.model import Report, report_of_json
from app.snapshots.canonical import canonical_json, content_hash
from app.waivers.state import WAIVER_STATE_SQL, waiver_state_of


def latest_snapshot_sql(column: str, env_param: str) -> str:
    """A scalar subquery: `column` of the environment's latest snapshot (by taken_at)."""
    return (
        f"(SELECT s.{column} FROM snapshots s JOIN environments e ON e.id = s.environment_id"
        f" WHERE e.name = :{env_param} ORDER BY s.taken_at DESC, s.id DESC LIMIT 1)"
    )


_STORED = text(
    "SELECT cs.left_snapshot_id, cs.right_snapshot_id, cs.waiver_state, cs.valid_until,"
    " cs.rules, ev.unwaived, ev.report, ev.resources, ev.categories,"
    f" {latest_snapshot_sql('id', 'left')} AS left_id,"
    f" {latest_snapshot_sql('id', 'right')} AS right_id, {WAIVER_STATE_SQL}"
    " FROM comparison_state cs JOIN evaluations ev ON ev.id = cs.evaluation_id"
    " WHERE cs.comparison = :comparison"
).columns(valid_until=UTCDateTime(), waiver_newest=UTCDateTime())

_DOCUMENT = text("SELECT body FROM documents WHERE hash = :hash")


def rules_digest(config: Config) -> str:
    """Everything in the config (and the release, which fixes the engine and the source
    types' volatile paths) that shapes a report: vars, tolerances, ignore rules, severity
    rules. A stored report with another digest is not served."""
    model = config.model
    shaping = {
        "version": __version__,
        "vars": {name: env.vars for name, env in config.environments.items()},
        "tolerate": [t.model_dump(mode="json") for t in model.tolerate],
        "ignore": [i.model_dump(mode="json") for i in model.ignore],
        "severity": [s.model_dump(mode="json") for s in model.severity],
    }
    return content_hash(canonical_json(shaping))


class JudgedFrom(Protocol):
    """What a comparison's state says its last evaluation was judged from (a comparison_state
    row, as the ORM or Core SQL reads it)."""

    @property
    def left_snapshot_id(self) -> int | None: ...
    @property
    def right_snapshot_id(self) -> int | None: ...
    @property
    def waiver_state(self) -> str | None: ...
    @property
    def rules(self) -> str | None: ...
    @property
    def valid_until(self) -> datetime | None: ...


def still_holds(
    state: JudgedFrom,
    left_id: int | None,
    right_id: int | None,
    waivers: str,
    rules: str,
    now: datetime,
) -> bool:
    """Whether a comparison's last evaluation (`state`: its comparison_state row) still
    judges the latest snapshots: same snapshots, stored waivers and rules, no waiver
    expired since."""
    return (
        left_id is not None
        and right_id is not None
        and state.left_snapshot_id == left_id
        and state.right_snapshot_id == right_id
        and state.waiver_state == waivers
        and state.rules == rules
        and (state.valid_until is None or now < state.valid_until)
    )


@dataclass
class StoredReport:
    text: str  # the report as `diff --format json` prints it
    unwaived: int
    resources_hash: str
    connection: Connection
    categories: frozenset[str] | None = None  # of the compared resources, when stored

    def report(self, now: datetime) -> Report:
        """The stored report as the objects the renderers take. The compared resources (a
        list as long as the snapshots) are decoded when first asked for: the gate and the
        overview need only their categories. Their text is read now, while the connection
        is open (one string, not a million tuples)."""
        report = report_of_json(json.loads(self.text), None, now)
        listed = self.connection.execute(_DOCUMENT, {"hash": self.resources_hash}).scalar_one()

        def load() -> list[tuple[str, str, str]]:
            return [(c, t, k) for c, t, k in json.loads(listed)]

        report.result.loader = load
        report.result.known_categories = self.categories
        return report


def stored_report(
    connection: Connection, config: Config, left: str, right: str, now: datetime
) -> StoredReport | None:
    """The stored report of `diff LEFT RIGHT` when both are environments' latest snapshots
    of a declared comparison and its evaluation still holds: same latest snapshots, same
    stored waivers, same rules, no waiver expired since. None otherwise (compute it)."""
    comparison = config.comparison(left, right)
    if comparison is None:
        return None
    row = connection.execute(
        _STORED, {"comparison": comparison.name, "left": left, "right": right}
    ).one_or_none()
    if row is None:
        return None
    if not still_holds(
        row, row.left_id, row.right_id, waiver_state_of(row), rules_digest(config), now
    ):
        return None
    body = connection.execute(_DOCUMENT, {"hash": row.report}).scalar_one_or_none()
    if body is None:
        return None
    categories = frozenset(json.loads(row.categories)) if row.categories is not None else None
    return StoredReport(body, row.unwaived, row.resources, connection, categories)

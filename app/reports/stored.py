"""Reports stored by the evaluation after each scan: written once, then served to `diff`,
the API and the dashboard for as long as nothing they depend on has changed."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from app import __version__
from app.config import Config
from app.db.models import ComparisonState, Evaluation
from app.diff.model import DiffResult, DriftItem, Unknown
from app.reports.service import Report, SnapshotMeta, parse_time
from app.snapshots.repository import SnapshotRepository
from app.snapshots.store import DocumentStore, canonical_json, content_hash
from app.waivers.repository import WaiverRepository
from collectors import registry


def rules_digest(config: Config) -> str:
    """Everything in the config (and the release) that shapes a report: vars, tolerances,
    ignore rules, severity rules, volatile paths. A stored report with another digest is
    not served."""
    model = config.model
    shaping = {
        "version": __version__,
        "vars": {name: env.vars for name, env in config.environments.items()},
        "tolerate": [t.model_dump(mode="json") for t in model.tolerate],
        "ignore": [i.model_dump(mode="json") for i in model.ignore],
        "severity": [s.model_dump(mode="json") for s in model.severity],
        "volatile": {n: list(c.volatile_paths) for n, c in registry.source_types().items()},
    }
    return content_hash(canonical_json(shaping))


@dataclass
class StoredReport:
    text: str
    evaluation: Evaluation
    resources_hash: str
    session: Session

    @property
    def unwaived(self) -> int:
        return self.evaluation.unwaived

    def report(self, now: datetime) -> Report:
        """The stored report as the objects the renderers take."""
        body = json.loads(self.text)
        resources_doc = DocumentStore(self.session).get([self.resources_hash])
        resources = [tuple(r) for r in json.loads(resources_doc[self.resources_hash])]
        items = [_item(i) for i in body["items"]]
        unknown = [Unknown(**u) for u in body["unknown"]]
        differing = len({(i.resource_type, i.key) for i in items if i.counts})
        compared = body["summary"]["compared"]
        result = DiffResult(body["comparison"], items, unknown, compared, differing, resources)
        return Report(_meta(body["left"]), _meta(body["right"]), result, now)


def _meta(side: dict[str, Any]) -> SnapshotMeta:
    return SnapshotMeta(
        side["environment"], side["snapshot_id"], parse_time(side["taken_at"]), side["status"]
    )


def _item(data: dict[str, Any]) -> DriftItem:
    first_seen = data.pop("first_seen")
    return DriftItem(**data, first_seen=parse_time(first_seen) if first_seen else None)


def stored_report(
    session: Session, config: Config, left: str, right: str, now: datetime
) -> StoredReport | None:
    """The stored report of `diff LEFT RIGHT` when both are environments' latest snapshots
    of a declared comparison and its evaluation still holds: same latest snapshots, same
    stored waivers, same rules, no waiver expired since. None otherwise (compute it)."""
    comparison = config.comparison(left, right)
    if comparison is None:
        return None
    state = session.get(ComparisonState, comparison.name)
    if state is None or state.evaluation_id is None:
        return None
    snapshots = SnapshotRepository(session)
    latest_left, latest_right = snapshots.latest(left), snapshots.latest(right)
    holds = (
        latest_left is not None
        and latest_right is not None
        and state.left_snapshot_id == latest_left.id
        and state.right_snapshot_id == latest_right.id
        and state.waiver_state == WaiverRepository(session).state()
        and (state.valid_until is None or now < state.valid_until)
        and state.rules == rules_digest(config)
    )
    if not holds:
        return None
    evaluation = session.get(Evaluation, state.evaluation_id)
    if evaluation is None:
        return None
    text = DocumentStore(session).get([evaluation.report]).get(evaluation.report)
    if text is None:
        return None
    return StoredReport(text, evaluation, evaluation.resources, session)

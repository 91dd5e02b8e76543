"""Judging a comparison's latest snapshots and storing the judgement as its evaluation: the
report, the evaluation row, and the comparison's state saying what it was judged from (so a
catch-up judges again only when something changed, and snapshots that cannot be judged are
not retried until they or the rules change).

A judgement is made before any write transaction, from what the database held then; it is
stored under the comparison's lock once `claim` has checked that the snapshots and waivers it
was judged from are still the latest. What else that transaction writes (the open drift and
the outbox) is alerting's: app/alerts/evaluate.py runs both in one transaction."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from app.config import ComparisonConfig, Config
from app.db.models import ComparisonState, Evaluation
from app.diff.model import DriftItem
from app.reports.model import Report, item_json
from app.reports.render import json_text
from app.reports.repository import EvaluationRepository, record_first_seen
from app.reports.service import SideCache, compared, first_waiver_expiry, meta, rules_of
from app.reports.stored import rules_digest, still_holds
from app.snapshots.canonical import canonical_json, content_hash
from app.snapshots.repository import SnapshotRepository
from app.snapshots.store import DocumentStore
from app.states import Severity
from app.waivers.repository import WaiverRepository


class Stale:
    """What `claim` says when the judgement is no longer about the latest data."""


STALE = Stale()


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


def failed_before(state: ComparisonState, left_id: int, right_id: int, rules: str) -> bool:
    """Whether these very snapshots, under these rules, already failed to be judged."""
    if not state.failed:
        return False
    marked = json.loads(state.failed)
    return bool(marked[:3] == [left_id, right_id, rules])


def judge(
    session: Session,
    config: Config,
    comparison: ComparisonConfig,
    now: datetime,
    force: bool = False,
    sides: SideCache | None = None,
) -> Judgement | None:
    """Compares the comparison's latest snapshots, writing nothing; None if its last
    evaluation still judges them (unless `force`). `sides` keeps the sides loaded for the
    comparisons judged one after the other."""
    snapshots = SnapshotRepository(session)
    left, right = snapshots.latest_pair(comparison.source, comparison.target)
    if left is None or right is None:
        return None
    waivers = WaiverRepository(session).state()
    rules = rules_digest(config)
    state = EvaluationRepository(session).state(comparison.name)
    if (
        not force
        and state is not None
        and still_holds(state, left.id, right.id, waivers, rules, now)
    ):
        return None
    if not force and state is not None and failed_before(state, left.id, right.id, rules):
        return None  # it failed on these very snapshots: judged again once they change
    result = compared(snapshots, config, left, right, rules_of(config, session, now), now, sides)
    report = Report(meta(left), meta(right), result, now)
    return Judgement(
        comparison=comparison,
        left_id=left.id,
        right_id=right.id,
        waivers=waivers,
        rules=rules,
        force=force,
        now=now,
        report=report,
        counting={i.fingerprint: i for i in report.counting},
        observed_at=max(left.taken_at, right.taken_at),
    )


def judge_locked(
    session: Session,
    config: Config,
    comparison: ComparisonConfig,
    now: datetime,
    force: bool = False,
) -> Judgement | None:
    """Takes the comparison's lock, judges, records when the drift was seen and renders, all
    in the caller's one transaction, ready to be stored in it; None as `judge`."""
    EvaluationRepository(session).lock(comparison.name)
    judged = judge(session, config, comparison, now, force)
    if judged is None:
        return None
    record_first_seen(session, judged.report.result, judged.observed_at)
    judged.render()
    return judged


def claim(session: Session, judged: Judgement) -> ComparisonState | Stale | None:
    """The comparison's state, write-locked, when the judgement is still to be stored: STALE
    if newer snapshots or waivers came since it was made; None if another evaluation of the
    same data was stored meanwhile."""
    comparison = judged.comparison
    state = EvaluationRepository(session).lock(comparison.name)
    snapshots = SnapshotRepository(session)
    left, right = snapshots.latest_pair(comparison.source, comparison.target)
    waivers = WaiverRepository(session).state()
    if (left.id if left else None, right.id if right else None, waivers) != (
        judged.left_id,
        judged.right_id,
        judged.waivers,
    ):
        return STALE
    if not judged.force and still_holds(
        state, judged.left_id, judged.right_id, waivers, judged.rules, judged.now
    ):
        return None  # evaluated by another process meanwhile
    return state


def store(
    session: Session,
    config: Config,
    judged: Judgement,
    state: ComparisonState,
    opened: int,
    resolved: int,
) -> Evaluation:
    """Stores a rendered, claimed judgement as the comparison's current evaluation: its
    report and compared resources (content-addressed documents), the evaluation row with how
    much drift `opened` and `resolved` with it, and the comparison's state."""
    assert judged.summary is not None, "render() first"
    summary, counting, now = judged.summary, judged.counting, judged.now
    digest, resources = content_hash(judged.text), content_hash(judged.compared)
    DocumentStore(session).put({digest: judged.text, resources: judged.compared})
    evaluation = EvaluationRepository(session).add(
        Evaluation(
            comparison=judged.comparison.name,
            left_snapshot_id=judged.left_id,
            right_snapshot_id=judged.right_id,
            created_at=now,
            report=digest,
            resources=resources,
            categories=json.dumps(sorted(judged.report.result.categories)),
            unwaived=summary["unwaived"],
            critical=sum(i.severity == Severity.CRITICAL for i in counting.values()),
            warning=sum(i.severity == Severity.WARNING for i in counting.values()),
            info=sum(i.severity == Severity.INFO for i in counting.values()),
            parity=summary["parity"],
            unknown_sources=summary["unknown_sources"],
            opened=opened,
            resolved=resolved,
        )
    )
    state.left_snapshot_id, state.right_snapshot_id = judged.left_id, judged.right_id
    state.waiver_state = judged.waivers
    state.rules = judged.rules
    state.valid_until = first_waiver_expiry(session, config, now)
    state.evaluated_at = now
    state.evaluation_id = evaluation.id
    state.failed = None
    session.flush()
    return evaluation


def mark_failed(
    session: Session, config: Config, comparison: ComparisonConfig, exc: Exception
) -> None:
    """Remembers that the comparison's latest snapshots could not be judged, so that the
    catch-up does not retry them forever (a poison snapshot)."""
    snapshots = SnapshotRepository(session)
    left, right = snapshots.latest_pair(comparison.source, comparison.target)
    if left is None or right is None:
        return
    state = EvaluationRepository(session).lock(comparison.name)
    state.failed = json.dumps([left.id, right.id, rules_digest(config), type(exc).__name__])

"""`envparity db rescrub`: today's secret rules applied to everything stored by earlier ones.

Snapshots keep their ids, times and sources; each source's resources are redacted again and
written as a new manifest (content-addressed, so unchanged sources cost nothing). Stored
reports and alert payloads hold *shown* values: every secret part the rules find in them
becomes `(secret)`. The current evaluation of every comparison is redone quietly (nothing is
posted) so open drift and first-seen times follow the new fingerprints. Documents nothing
refers to any more (the old plaintext among them) are deleted, and the database files are
compacted so that they leave the disk too.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from app.config import Config
from app.db.models import (
    AlertEvent,
    DriftSeen,
    Evaluation,
    OpenDrift,
    Scan,
    SnapshotSource,
)
from app.reports.render import json_text
from app.snapshots.canonical import canonical_json, content_hash
from app.snapshots.store import DocumentStore, collect_garbage
from collectors.secrets import SHOWN, Census, Redactor, show_markers
from collectors.secrets.census import redact_resource

log = logging.getLogger(__name__)
_LAST_KEY = re.compile(r"[.\[\]]")


@dataclass
class RescrubStats:
    """What a rescrub did, in counts only: never a value."""

    rules: Counter[str] = field(default_factory=Counter)
    sources: int = 0
    sources_changed: int = 0
    reports: int = 0
    reports_changed: int = 0
    events_changed: int = 0
    comparisons: int = 0
    documents_removed: int = 0


def needs_rescrub(session: Session, redactor: Redactor) -> bool:
    """Whether any stored source was redacted by other rules than today's (an older
    envparity, or other `secrets:` settings)."""
    for census in session.scalars(
        select(SnapshotSource.secrets).where(SnapshotSource.manifest.is_not(None))
    ):
        if census is None or json.loads(census).get("rules") != redactor.rules_id:
            return True
    return False


class Reshower:
    """Applies the rules to values as reports show them: each secret part becomes `(secret)`."""

    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor

    def text(self, value: str) -> str:
        return self.redactor.mask(show_markers(value), SHOWN)

    def value(self, value: Any, key: str | None = None) -> Any:
        if isinstance(value, str):
            if value == SHOWN or value.startswith(SHOWN):
                return value
            if key is not None and self.redactor.is_secret_key(key):
                return SHOWN
            return self.text(value)
        if isinstance(value, list):
            return [self.value(v, key) for v in value]
        if isinstance(value, dict):
            if "path" in value and ("left" in value or "right" in value):
                return self.item(value)
            return {k: self.value(v, k if isinstance(k, str) else key) for k, v in value.items()}
        return value

    def item(self, item: dict[str, Any]) -> dict[str, Any]:
        """A report item: its values are judged under the last key of its path."""
        path = str(item.get("path") or "")
        parts = [p for p in _LAST_KEY.split(path) if p]
        key = parts[-1] if parts else None
        out = {k: self.value(v, k) for k, v in item.items() if k not in ("left", "right")}
        for side in ("left", "right"):
            if side in item:
                out[side] = self.value(item[side], key)
        for name in ("key", "path", "detail"):
            if isinstance(item.get(name), str):
                out[name] = self.text(item[name])
        return out


def rescrub(
    sessions: sessionmaker[Session], config: Config, redactor: Redactor, now: datetime
) -> RescrubStats:
    stats = RescrubStats()
    reshow = Reshower(redactor)
    with sessions.begin() as session:
        _snapshots(session, redactor, stats)
        _reports(session, reshow, stats)
        _events(session, reshow, stats)
    _reevaluate(sessions, config, now, stats)
    with sessions.begin() as session:
        stats.documents_removed = collect_garbage(session)
    return stats


def _snapshots(session: Session, redactor: Redactor, stats: RescrubStats) -> None:
    store = DocumentStore(session)
    done: dict[str, tuple[str, str]] = {}  # old manifest -> new manifest, census
    for row in session.scalars(select(SnapshotSource).order_by(SnapshotSource.id)):
        stats.sources += 1
        if row.error:
            row.error = redactor.scrub(row.error)
        if row.manifest is None:
            continue
        if row.manifest not in done:
            resources = store.read_manifests([row.manifest])[row.manifest]
            census = Census(redactor.rules_id)
            redacted = []
            for r in resources:
                key, attributes = redact_resource(
                    redactor, census, r.resource_type, r.key, r.attributes
                )
                redacted.append((r.category, r.resource_type, key, attributes))
            manifest, _count = store.write_manifest(redacted)
            done[row.manifest] = (manifest, json.dumps(census.as_json()))
            stats.rules.update(census.counts)
        manifest, census_json = done[row.manifest]
        if manifest != row.manifest:
            stats.sources_changed += 1
        row.manifest, row.secrets = manifest, census_json
    for scan in session.scalars(select(Scan).where(Scan.error.is_not(None))):
        assert scan.error is not None
        scan.error = redactor.scrub(scan.error)
    session.flush()


def _reports(session: Session, reshow: Reshower, stats: RescrubStats) -> None:
    store = DocumentStore(session)
    for evaluation in session.scalars(select(Evaluation).order_by(Evaluation.id)):
        stats.reports += 1
        bodies = store.get([evaluation.report, evaluation.resources])
        for column, form in (("report", json_text), ("resources", canonical_json)):
            digest = getattr(evaluation, column)
            body = bodies.get(digest)
            if body is None:
                continue
            before = json.loads(body)
            after = reshow.value(before)
            if after == before:
                continue
            new_body = form(after)  # stored as the evaluation stores it
            new_digest = content_hash(new_body)
            store.put({new_digest: new_body})
            setattr(evaluation, column, new_digest)
            stats.reports_changed += column == "report"
    for row in session.scalars(select(OpenDrift)):
        row.key, row.path = reshow.text(row.key), reshow.text(row.path)
    session.flush()


def _events(session: Session, reshow: Reshower, stats: RescrubStats) -> None:
    for event in session.scalars(select(AlertEvent)):
        payload = json.loads(event.payload)
        new = reshow.value(payload)
        if new != payload:
            event.payload = json.dumps(new, ensure_ascii=False)
            stats.events_changed += 1
        if event.last_error:
            event.last_error = reshow.redactor.scrub(event.last_error)
    session.flush()


def _identity(row: OpenDrift) -> tuple[str, str, str, str]:
    return (row.resource_type, row.key, row.path, row.change)


def _reevaluate(
    sessions: sessionmaker[Session], config: Config, now: datetime, stats: RescrubStats
) -> None:
    """The current evaluation of every comparison, redone without posting anything; a drift
    whose fingerprint changed (its values are shown differently now) keeps when it opened
    and when it was first seen."""
    from app.alerts.evaluate import evaluate

    for comparison in config.model.comparisons:
        with sessions.begin() as session:
            before = {
                _identity(r): r
                for r in session.scalars(
                    select(OpenDrift).where(OpenDrift.comparison == comparison.name)
                )
            }
            old = {_identity(r): (r.fingerprint, r.opened_at) for r in before.values()}
            seen = {
                row.fingerprint: row.first_seen
                for row in session.scalars(
                    select(DriftSeen).where(DriftSeen.comparison == comparison.name)
                )
            }
            if evaluate(session, config, comparison, now, force=True, quiet=True) is None:
                continue
            stats.comparisons += 1
            moved = False
            for row in session.scalars(
                select(OpenDrift).where(OpenDrift.comparison == comparison.name)
            ):
                previous = old.get(_identity(row))
                if previous is None or previous[0] == row.fingerprint:
                    continue
                row.opened_at = min(row.opened_at, previous[1])
                first = seen.get(previous[0])
                new_seen = session.get(DriftSeen, (comparison.name, row.fingerprint))
                if first is not None and new_seen is not None and first < new_seen.first_seen:
                    new_seen.first_seen = first
                    moved = True
            session.flush()
            if moved:  # the stored report must carry the first-seen times just carried over
                evaluate(session, config, comparison, now, force=True, quiet=True)


def compact(engine: Engine) -> None:
    """Rewrites the database files so deleted rows (old plaintext) leave the disk."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(text("VACUUM"))
            conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        else:
            tables = "documents, snapshot_sources, scans, evaluations, open_drift, alert_events"
            conn.execute(text(f"VACUUM FULL {tables}"))

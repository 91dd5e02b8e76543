"""`envparity secrets audit`: the census of what was treated as a secret, per source and rule.

Read from the latest snapshot of each environment; it names paths and rules, never a value
(a resource key shows any secret inside it as `(secret)`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from app.snapshots.repository import SnapshotRepository
from app.states import SourceStatus
from collectors.secrets import RULES, show_markers


@dataclass
class SourceCensus:
    environment: str
    snapshot_id: int
    source: str
    type: str
    status: SourceStatus
    rules_version: int | None  # None: stored before the census existed
    current: bool  # redacted by today's rule set
    counts: dict[str, int] = field(default_factory=dict)
    paths: list[dict[str, str]] = field(default_factory=list)
    more: int = 0

    @property
    def outdated(self) -> bool:
        return self.status == SourceStatus.OK and not self.current

    def as_json(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "snapshot_id": self.snapshot_id,
            "source": self.source,
            "type": self.type,
            "status": self.status,
            "rules_version": self.rules_version,
            "outdated": self.outdated,
            "counts": self.counts,
            "paths": self.paths,
            "more": self.more,
        }


def audit(session: Session, environments: list[str], rules_id: str) -> list[SourceCensus]:
    repo = SnapshotRepository(session)
    out: list[SourceCensus] = []
    for name in environments:
        snapshot = repo.latest(name)
        if snapshot is None:
            continue
        for source in snapshot.sources:
            data = json.loads(source.secrets) if source.secrets else {}
            out.append(
                SourceCensus(
                    environment=name,
                    snapshot_id=snapshot.id,
                    source=source.name,
                    type=source.type,
                    status=SourceStatus(source.status),
                    rules_version=data.get("rules_version"),
                    current=data.get("rules") == rules_id,
                    counts=data.get("counts", {}),
                    paths=[
                        {
                            "resource_type": resource_type,
                            "key": show_markers(key),
                            "path": path,
                            "rule": rule,
                            "why": RULES.get(rule, ""),
                        }
                        for resource_type, key, path, rule in data.get("paths", [])
                    ],
                    more=data.get("more", 0),
                )
            )
    return out

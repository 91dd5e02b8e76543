"""Drift counts of past snapshot pairs for the environment timeline, where no stored evaluation
has them: computed with the reports service and kept per process. A snapshot never changes, so
a pair's counts change only with the stored waivers (their state is in the key) or when a
waiver expires (entries live a few minutes)."""

from __future__ import annotations

import threading
import time
from datetime import datetime

from sqlalchemy.orm import Session

from app.config import Config
from app.db.models import Snapshot
from app.reports.render import unwaived_by_severity
from app.reports.service import compare_snapshots
from app.states import Severity


class DriftHistory:
    def __init__(self, size: int = 4096, ttl: float = 300.0) -> None:
        self.size = size
        self.ttl = ttl
        # (left snapshot id, right snapshot id, stored waivers' state) -> (counts, when made)
        self.entries: dict[tuple[int, int, str], tuple[dict[Severity, int], float]] = {}
        self.lock = threading.Lock()

    def counts(
        self,
        session: Session,
        config: Config,
        left: Snapshot,
        right: Snapshot,
        waivers: str,
        now: datetime,
    ) -> dict[Severity, int]:
        """Unwaived drift items by severity between two snapshots, as the report judges them."""
        key = (left.id, right.id, waivers)
        with self.lock:
            hit = self.entries.get(key)
        if hit is not None and time.monotonic() - hit[1] < self.ttl:
            return hit[0]
        counts = unwaived_by_severity(compare_snapshots(session, config, left, right, now))
        with self.lock:
            if len(self.entries) >= self.size:
                self.entries.pop(next(iter(self.entries)))
            self.entries[key] = (counts, time.monotonic())
        return counts

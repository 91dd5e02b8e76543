"""Re-evaluating comparisons after a scan or push: the evaluation judged and stored
(app/reports/evaluations.py), and the drift that opened and resolved since the last one
written with its outbox events (app/alerts/events.py), in one transaction.

The comparison itself (the expensive part: thousands of resources compared, the report
rendered) is done before that transaction, from what the database held then; the write
transaction takes the comparison's lock, checks that the snapshots and waivers it was judged
from are still the latest, and only writes. On SQLite, whose writers take turns, the write
lock is held for the writing alone, not for the comparison."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from app.alerts.events import changes, record
from app.alerts.repository import AlertRepository
from app.clock import SYSTEM, Clock
from app.config import ComparisonConfig, Config
from app.diff.heap import cycle_collection_paused
from app.errors import EnvparityError
from app.reports.evaluations import (
    Judgement,
    Stale,
    claim,
    judge,
    judge_locked,
    mark_failed,
    store,
)
from app.reports.repository import record_first_seen
from app.reports.service import SideCache, kept_sides
from app.runtime import Runtime
from app.snapshots.service import Scanner

log = logging.getLogger(__name__)

RETRIES = 3


@dataclass(frozen=True)
class Outcome:
    comparison: str
    evaluation_id: int
    opened: int
    resolved: int
    reminded: int
    events: int


class Evaluator:
    """Evaluates comparisons, each in its own transaction (a unit-of-work edge)."""

    def __init__(
        self,
        config: Config,
        sessions: sessionmaker[Session],
        clock: Clock = SYSTEM,
        sides: SideCache | None = None,
    ) -> None:
        self.config = config
        self.sessions = sessions
        self.clock = clock
        # Kept between calls when given (a process's runtime keeps one: Evaluator.of).
        self.sides = sides

    @classmethod
    def of(cls, runtime: Runtime) -> Evaluator:
        """An evaluator on the runtime's config, database and clock, reusing the sides the
        runtime's earlier evaluations loaded."""
        return cls(runtime.config, runtime.sessions, runtime.clock, kept_sides(runtime))

    def after_snapshot(self, environment: str) -> list[Outcome]:
        """Every comparison involving the environment; a failure is logged and left to the
        next catch-up (the snapshot is stored whatever happens here)."""
        return self._each(
            c for c in self.config.model.comparisons if environment in (c.source, c.target)
        )

    def catch_up(self) -> list[Outcome]:
        """Every comparison whose data or waivers changed since it was last evaluated (after
        a crash between a scan and its evaluation, or when a waiver expires)."""
        return self._each(iter(self.config.model.comparisons))

    def _each(self, comparisons: Iterable[ComparisonConfig]) -> list[Outcome]:
        outcomes = []
        # an environment in several comparisons is loaded once
        sides = self.sides if self.sides is not None else SideCache()
        with cycle_collection_paused():  # the sides and reports: many objects, no cycle
            for comparison in comparisons:
                try:
                    outcome = self.evaluate(comparison, sides=sides)
                except EnvparityError as exc:
                    log.warning("evaluation of %s failed: %s", comparison.name, exc.message)
                    continue
                except Exception as exc:  # the snapshot is stored whatever happens
                    log.exception(
                        "evaluation of %s failed; not tried again until its snapshots or rules "
                        "change",
                        comparison.name,
                    )
                    self._mark_failed(comparison, exc)
                    continue
                if outcome is not None:
                    outcomes.append(outcome)
        return outcomes

    def evaluate(
        self,
        comparison: ComparisonConfig,
        now: datetime | None = None,
        sides: SideCache | None = None,
    ) -> Outcome | None:
        """Judges first (reads only), records when the drift was seen (its own short write),
        then writes the evaluation in one short transaction. If newer snapshots or waivers
        came meanwhile, judges again; after `RETRIES` such races, judges under the lock."""
        for _ in range(RETRIES):
            when = now or self.clock.now()
            with self.sessions.begin() as session:
                judged = judge(session, self.config, comparison, when, sides=sides)
            if judged is None:
                return None
            with self.sessions.begin() as session:
                record_first_seen(session, judged.report.result, judged.observed_at)
            judged.render()
            with self.sessions.begin() as session:
                outcome = write(session, self.config, judged)
            if not isinstance(outcome, Stale):
                return outcome
            log.info("%s changed while it was judged: judging again", comparison.name)
        with self.sessions.begin() as session:
            return evaluate(session, self.config, comparison, now or self.clock.now())

    def _mark_failed(self, comparison: ComparisonConfig, exc: Exception) -> None:
        """Remembers that these snapshots could not be judged, so that the catch-up does not
        retry them forever (a poison snapshot)."""
        try:
            with self.sessions.begin() as session:
                mark_failed(session, self.config, comparison, exc)
        except Exception:  # the database itself may be what failed: the next try says so
            log.warning("could not record that %s failed", comparison.name)


def evaluate(
    session: Session,
    config: Config,
    comparison: ComparisonConfig,
    now: datetime,
    force: bool = False,
    quiet: bool = False,
) -> Outcome | None:
    """Evaluates a comparison if its latest snapshots or the waivers changed since its last
    evaluation (or `force`); None if there was nothing new to judge. `quiet` keeps the open
    drift up to date without posting anything (`db rescrub` re-keys what it already knew).
    All in the caller's one transaction, the comparison's lock taken first (for the writes
    to come after the comparison, see Evaluator.evaluate)."""
    judged = judge_locked(session, config, comparison, now, force)
    if judged is None:
        return None
    outcome = write(session, config, judged, quiet)
    assert not isinstance(outcome, Stale)  # judged under the lock: nothing came between
    return outcome


def write(
    session: Session, config: Config, judged: Judgement, quiet: bool = False
) -> Outcome | Stale | None:
    """Stores a rendered judgement under the comparison's lock: the evaluation, its report,
    the open drift and the outbox events. STALE if newer snapshots or waivers came since the
    judgement; None if another evaluation of the same data was written meanwhile."""
    state = claim(session, judged)
    if state is None or isinstance(state, Stale):
        return state
    alerts = AlertRepository(session)
    changed = changes(alerts, config, judged, quiet)
    opened, resolved = len(changed.opened), len(changed.resolved)
    evaluation = store(session, config, judged, state, opened, resolved)
    events = record(alerts, config, judged, changed, evaluation.id, quiet)
    name = judged.comparison.name
    log.info("%s evaluated: %d opened, %d resolved, %d events", name, opened, resolved, events)
    return Outcome(name, evaluation.id, opened, resolved, len(changed.reminders), events)


def evaluating_scanner(runtime: Runtime) -> Scanner:
    """A scanner whose every stored snapshot re-evaluates the comparisons it is part of, both
    on the runtime's clock."""
    evaluator = Evaluator.of(runtime)
    return Scanner(
        runtime.config,
        runtime.sessions,
        runtime.redactor,
        on_stored=evaluator.after_snapshot,
        clock=runtime.clock,
    )

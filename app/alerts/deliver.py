"""The deliverer: sends the outbox's pending events, oldest first, and records each answer.

A deliverer claims an event (one conditional UPDATE) before sending it, so two processes
never send the same event; an event is marked delivered right after its peer accepted it,
so a restart does not resend it (a crash in between these two steps is the one case where
a message may go twice: at least once, never lost). Per target and comparison, events go in
order: a later one waits while an earlier one is retried."""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from app.alerts.evaluate import Evaluator
from app.alerts.repository import AlertRepository
from app.alerts.senders import Sender, Sent, sender_for
from app.config import Config
from app.db.base import utcnow
from app.db.models import AlertEvent
from collectors.secrets import Redactor

log = logging.getLogger(__name__)

CLAIM_FOR = timedelta(minutes=2)  # longer than one request's timeout, with room
PACE = 1.0  # seconds between two messages to one destination (Slack: 1 per second)
MAX_ATTEMPTS = 12  # failures (5xx, network) before an event is marked failed: ~45 minutes
MAX_RATE_LIMITED = 50  # 429s before an event is marked failed
BACKOFF_CAP = 600.0


def backoff(attempt: int) -> float:
    """2, 4, 8 ... seconds, capped at 10 minutes, with jitter."""
    base: float = min(BACKOFF_CAP, 2.0**attempt)
    return base * random.uniform(0.8, 1.2)


@dataclass
class Drained:
    delivered: int = 0
    failed: int = 0
    pending: int = 0


class Deliverer:
    def __init__(
        self,
        config: Config,
        sessions: sessionmaker[Session],
        redactor: Redactor,
        on_result: Callable[[AlertEvent, Sent], None] | None = None,
    ) -> None:
        self.config = config
        self.sessions = sessions
        self.redactor = redactor
        self.on_result = on_result
        self.last_post: dict[str, float] = {}  # destination -> monotonic time of last post

    # ------------------------------------------------------------------ one pass

    def deliver_due(self) -> Drained:
        """Sends every event that is due now; what must wait is left for a later pass."""
        done = Drained()
        now = utcnow()
        with self.sessions.begin() as session:
            queue = [
                (e.id, e.comparison, e.target, e.next_attempt_at)
                for e in AlertRepository(session).due(now)
            ]
        held: set[tuple[str, str]] = set()
        for event_id, comparison, target, when in queue:
            lane = (target, comparison)
            if lane in held:
                continue
            if when > utcnow() or not self._claim(event_id):
                held.add(lane)
                continue
            outcome = self._deliver(event_id)
            if outcome == "delivered":
                done.delivered += 1
            else:
                held.add(lane)
                done.failed += outcome == "failed"
        return done

    def _claim(self, event_id: int) -> bool:
        with self.sessions.begin() as session:
            return AlertRepository(session).claim(event_id, utcnow(), CLAIM_FOR)

    def _deliver(self, event_id: int) -> str:
        with self.sessions.begin() as session:
            repo = AlertRepository(session)
            event = repo.event(event_id)
            payload = json.loads(event.payload)
            sender = sender_for(self.config, event.comparison, event.target)
            # A thread lives in its channel: after a change of channel, a new one starts.
            prefix = sender.thread_prefix if sender is not None else None
            thread = repo.thread_root(event.comparison, event.target, prefix) if prefix else None
        if sender is None:
            sent = Sent("failed", f"{event.target} is no longer configured for this comparison")
        else:
            self._pace(sender)
            sent = sender.send(event_id, payload, thread)
        with self.sessions.begin() as session:
            event = AlertRepository(session).event(event_id)
            self._record(event, sent, utcnow())
        if self.on_result is not None:
            self.on_result(event, sent)
        return event.status if event.status != "pending" else "retry"

    def _pace(self, sender: Sender) -> None:
        last = self.last_post.get(sender.destination)
        if last is not None:
            wait = PACE - (time.monotonic() - last)
            if wait > 0:
                time.sleep(wait)
        self.last_post[sender.destination] = time.monotonic()

    def _record(self, event: AlertEvent, sent: Sent, now: datetime) -> None:
        event.attempts += 1
        event.claimed_until = None
        error = self.redactor.scrub(sent.error) if sent.error else None
        if sent.outcome == "delivered":
            event.status, event.delivered_at, event.remote_ref = "delivered", now, sent.remote_ref
            event.last_error = None
            log.info("alert #%s (%s, %s) delivered", event.id, event.kind, event.target)
            return
        event.last_error = error
        limit = MAX_RATE_LIMITED if sent.retry_after is not None else MAX_ATTEMPTS
        if sent.outcome == "failed" or event.attempts >= limit:
            event.status = "failed"
            log.warning("alert #%s to %s failed for good: %s", event.id, event.target, error)
            return
        delay = sent.retry_after if sent.retry_after is not None else backoff(event.attempts)
        event.next_attempt_at = now + timedelta(seconds=delay)
        log.info("alert #%s to %s: %s; retry in %.0f s", event.id, event.target, error, delay)

    # ------------------------------------------------------------------ loops

    def drain(self, timeout: float) -> Drained:
        """Delivers until nothing is pending, or until what is left could not be sent
        within `timeout` seconds (before `envparity scan` exits)."""
        deadline = time.monotonic() + timeout
        total = Drained()
        while True:
            done = self.deliver_due()
            total.delivered += done.delivered
            total.failed += done.failed
            with self.sessions.begin() as session:
                repo = AlertRepository(session)
                total.pending, next_due = repo.pending(), repo.next_due()
            if not total.pending or next_due is None:
                return total
            # Due now but not sent: another process holds it; look again shortly.
            idle = 0.5 if not (done.delivered or done.failed) else 0.05
            wait = max(idle, (next_due - utcnow()).total_seconds())
            if time.monotonic() + wait > deadline:
                return total
            time.sleep(wait)

    def run(self, stop: threading.Event, every: float = 2.0, catch_up_every: float = 30.0) -> None:
        """Until `stop`: deliver what is due, and every `catch_up_every` seconds evaluate
        the comparisons that changed without an evaluation (a waiver expiring, a crash)."""
        evaluator = Evaluator(self.config, self.sessions)
        next_catch_up = 0.0
        while not stop.is_set():
            try:
                if time.monotonic() >= next_catch_up:
                    evaluator.catch_up()
                    next_catch_up = time.monotonic() + catch_up_every
                self.deliver_due()
            except SQLAlchemyError as exc:  # the database is away: try again later
                log.warning("alert delivery paused: %s", type(exc).__name__)
            stop.wait(every)


class Background:
    """The deliverer on a thread, for `serve` and `scheduler`."""

    def __init__(self, deliverer: Deliverer, every: float = 2.0) -> None:
        self.stop = threading.Event()
        self.thread = threading.Thread(
            target=deliverer.run, args=(self.stop, every), daemon=True, name="envparity-alerts"
        )

    def start(self) -> None:
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=30)

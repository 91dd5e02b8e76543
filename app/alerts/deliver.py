"""The deliverer: sends the outbox's pending events, oldest first, and records each answer.

A deliverer claims an event (one conditional UPDATE) before sending it, so two processes
never send the same event at once; the claim lasts longer than the send can (every request
ends by `alerts.request_timeout`), so it never runs out mid-send. An event is marked delivered
right after its peer accepted it, so a restart does not resend it (a crash in between these
two steps is the one case where a message may go twice: at least once, never lost). A send
that went out and got no answer may have reached the peer too: webhook deliveries carry an
idempotency key for that, and such sends are bounded (`alerts.max_unanswered`).

Each destination has its own worker (at most `alerts.delivery_workers` at once): a slow or
silent peer holds only its own events. Per target and comparison, events go in order: a
later one waits while an earlier one is retried.

The deliverer reads and waits on a `Clock` (app/clock.py): what is due, claims, pacing, the
deadlines of `drain` and the passes of `run`. A request itself runs on real time: its peer
answers in real seconds, whatever the clock says."""

from __future__ import annotations

import hashlib
import json
import logging
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from app.alerts.evaluate import Evaluator
from app.alerts.repository import AlertRepository
from app.alerts.senders import Outgoing, Sender, Sent, sender_for
from app.clock import SYSTEM, Clock
from app.config import Config
from app.db.models import AlertEvent
from app.states import DeliveryStatus
from collectors.secrets import Redactor

log = logging.getLogger(__name__)

CLAIM_MARGIN = timedelta(minutes=1)  # a claim outlives the longest send by this much
PACE = 1.0  # seconds between two messages to one destination (Slack: 1 per second)
MAX_ATTEMPTS = 12  # failures (5xx, network) before an event is marked failed: ~45 minutes
MAX_RATE_LIMITED = 50  # 429s before an event is marked failed
BACKOFF_CAP = 600.0


def backoff(attempt: int) -> float:
    """2, 4, 8 ... seconds, capped at 10 minutes, with jitter."""
    base: float = min(BACKOFF_CAP, 2.0**attempt)
    return base * random.uniform(0.8, 1.2)


def idempotency_key(event: AlertEvent) -> str:
    """The same for every attempt at one event and different for any other event, also in
    another database whose ids restarted at 1 (its creation time is in it)."""
    seed = f"{event.id}|{event.created_at.isoformat()}|{event.target}|{event.kind}"
    return f"envparity-{event.id}-{hashlib.sha256(seed.encode()).hexdigest()[:16]}"


@dataclass
class Drained:
    delivered: int = 0
    failed: int = 0
    pending: int = 0
    retrying: int = 0  # sent (or tried) and not accepted: to be sent again later

    def add(self, other: Drained) -> None:
        self.delivered += other.delivered
        self.failed += other.failed
        self.retrying += other.retrying


Due = tuple[int, str, str, datetime]  # event id, comparison, target, next attempt


class Deliverer:
    def __init__(
        self,
        config: Config,
        sessions: sessionmaker[Session],
        redactor: Redactor,
        on_result: Callable[[AlertEvent, Sent], None] | None = None,
        clock: Clock = SYSTEM,
    ) -> None:
        self.config = config
        self.sessions = sessions
        self.redactor = redactor
        self.on_result = on_result
        self.clock = clock
        alerts = config.model.alerts
        self.request_timeout = alerts.request_timeout.total_seconds()
        self.max_unanswered = alerts.max_unanswered
        # Pacing and the send itself, with room: nobody else takes the event meanwhile.
        self.claim_for = timedelta(seconds=self.request_timeout + PACE) + CLAIM_MARGIN
        self.last_post: dict[str, float] = {}  # destination -> clock.monotonic() of last post
        self.max_workers = alerts.delivery_workers
        self.workers: ThreadPoolExecutor | None = None  # made by the first pass
        self.busy: dict[str, Future[Drained]] = {}  # destination -> its worker's pass
        self.lock = threading.Lock()

    def close(self) -> None:
        """Waits for the sends under way (each ends by its deadline) and stops the workers."""
        with self.lock:
            workers, self.workers = self.workers, None
            self.busy.clear()
        if workers is not None:
            workers.shutdown(wait=True, cancel_futures=True)

    # ------------------------------------------------------------------ one pass

    def deliver_due(self, until: float | None = None, wait: bool = True) -> Drained:
        """Sends every event that is due now, each destination by its own worker; what must
        wait is left for a later pass. `until` (clock.monotonic()): no send goes on past it.
        `wait=False` starts the workers and returns at once (serve: a destination still busy
        from an earlier pass is left to its worker)."""
        with self.sessions.begin() as session:
            queue: list[Due] = [
                (e.id, e.comparison, e.target, e.next_attempt_at)
                for e in AlertRepository(session).due(self.clock.now())
            ]
        by_destination: dict[str, list[Due]] = {}
        for due in queue:
            sender = sender_for(self.config, due[1], due[2])
            destination = sender.destination if sender is not None else f"gone:{due[2]}"
            by_destination.setdefault(destination, []).append(due)
        started = []
        with self.lock:
            for destination, events in by_destination.items():
                running = self.busy.get(destination)
                if running is not None and not running.done():
                    continue
                if self.workers is None:
                    self.workers = ThreadPoolExecutor(
                        max_workers=self.max_workers, thread_name_prefix="envparity-deliver"
                    )
                work = self.workers.submit(self._deliver_lanes, events, until)
                if not wait:  # nobody reads its result: say what went wrong
                    work.add_done_callback(_log_failure)
                self.busy[destination] = work
                started.append(work)
        if started:
            _Batch(started)
        done = Drained()
        if wait:
            for work in started:
                done.add(work.result())
        return done

    def _deliver_lanes(self, queue: list[Due], until: float | None) -> Drained:
        """One destination's due events, in order, one at a time."""
        done = Drained()
        held: set[tuple[str, str]] = set()
        for event_id, comparison, target, when in queue:
            lane = (target, comparison)
            if lane in held:
                continue
            if until is not None and self.clock.monotonic() >= until:
                break
            claim = self._claim(event_id) if when <= self.clock.now() else None
            if claim is None:
                held.add(lane)
                continue
            outcome = self._deliver(event_id, claim, until)
            if outcome == "delivered":
                done.delivered += 1
            else:
                held.add(lane)
                done.failed += outcome == "failed"
                done.retrying += outcome == "retry"
        return done

    def _claim(self, event_id: int) -> datetime | None:
        """The claim's end if this deliverer now holds the event, else None."""
        now = self.clock.now()
        with self.sessions.begin() as session:
            if AlertRepository(session).claim(event_id, now, self.claim_for):
                return now + self.claim_for
        return None

    def _deliver(self, event_id: int, claim: datetime, until: float | None) -> str:
        with self.sessions.begin() as session:
            repo = AlertRepository(session)
            event = repo.event(event_id)
            payload = json.loads(event.payload)
            key = idempotency_key(event)
            sender = sender_for(self.config, event.comparison, event.target)
            # A thread lives in its channel: after a change of channel, a new one starts.
            prefix = sender.thread_prefix if sender is not None else None
            thread = repo.thread_root(event.comparison, event.target, prefix) if prefix else None
        if sender is None:
            sent = Sent("failed", f"{event.target} is no longer configured for this comparison")
        else:
            self._pace(sender)
            budget = self.request_timeout
            if until is not None:
                budget = min(budget, until - self.clock.monotonic())
            if budget <= 0:  # no time left: not an attempt
                self._release(event_id, claim)
                return "retry"
            # The transport's deadline is on real time (time.monotonic()): so is the peer.
            deadline = time.monotonic() + budget
            sent = sender.send(Outgoing(event_id, key, payload, thread, deadline))
        with self.sessions.begin() as session:
            event = AlertRepository(session).event(event_id)
            ours = event.claimed_until == claim
            if event.status != DeliveryStatus.PENDING or not (ours or sent.outcome == "delivered"):
                # Another deliverer took the event meanwhile (this process stood still past
                # its claim): unless this send was accepted, theirs is the record that counts.
                log.warning("alert #%s: the answer came after the claim ended", event_id)
                return "retry"
            self._record(event, sent, self.clock.now())
        if self.on_result is not None:
            self.on_result(event, sent)
        return event.status if event.status != DeliveryStatus.PENDING else "retry"

    def _release(self, event_id: int, claim: datetime) -> None:
        with self.sessions.begin() as session:
            event = AlertRepository(session).event(event_id)
            if event.claimed_until == claim:
                event.claimed_until = None

    def _pace(self, sender: Sender) -> None:
        last = self.last_post.get(sender.destination)
        if last is not None:
            wait = PACE - (self.clock.monotonic() - last)
            if wait > 0:
                self.clock.sleep(wait)
        self.last_post[sender.destination] = self.clock.monotonic()

    def _record(self, event: AlertEvent, sent: Sent, now: datetime) -> None:
        event.attempts += 1
        event.claimed_until = None
        error = self.redactor.scrub(sent.error) if sent.error else None
        if sent.outcome == "delivered":
            event.status, event.delivered_at, event.remote_ref = (
                DeliveryStatus.DELIVERED,
                now,
                sent.remote_ref,
            )
            event.last_error = None
            log.info(
                "alert #%s (%s, %s) delivered",
                event.id,
                event.kind,
                event.target,
                extra={**_fields(event), "event": "alert.delivered"},
            )
            return
        event.last_error = error
        limit = MAX_RATE_LIMITED if sent.retry_after is not None else MAX_ATTEMPTS
        if sent.unanswered and event.attempts >= self.max_unanswered:
            # It went out and the peer may have it: not again, unless a person says so.
            event.status = DeliveryStatus.FAILED
            event.last_error = (
                f"{error}; sent {event.attempts} times without an answer: not sent again "
                "(`envparity alerts retry` sends it once more)"
            )
            log.warning(
                "alert #%s to %s failed: %s",
                event.id,
                event.target,
                event.last_error,
                extra={**_fields(event), "event": "alert.failed", "error": event.last_error},
            )
            return
        if sent.outcome == "failed" or event.attempts >= limit:
            event.status = DeliveryStatus.FAILED
            log.warning(
                "alert #%s to %s failed for good: %s",
                event.id,
                event.target,
                error,
                extra={**_fields(event), "event": "alert.failed", "error": error},
            )
            return
        delay = sent.retry_after if sent.retry_after is not None else backoff(event.attempts)
        event.next_attempt_at = now + timedelta(seconds=delay)
        log.info(
            "alert #%s to %s: %s; retry in %.0f s",
            event.id,
            event.target,
            error,
            delay,
            extra={
                **_fields(event),
                "event": "alert.retry",
                "error": error,
                "retry_in_s": round(delay, 1),
            },
        )

    # ------------------------------------------------------------------ loops

    def drain(self, timeout: float) -> Drained:
        """Delivers until nothing is pending, or until what is left could not be sent
        within `timeout` seconds (before `envparity scan` exits): a send under way when the
        time is up is cut off then, whatever the peer does."""
        deadline = self.clock.monotonic() + timeout
        total = Drained()
        try:
            while True:
                done = self.deliver_due(until=deadline)
                total.add(done)
                with self.sessions.begin() as session:
                    repo = AlertRepository(session)
                    total.pending, next_due = repo.pending(), repo.next_due()
                if not total.pending or next_due is None:
                    return total
                # Due now but not sent: another process holds it; look again shortly.
                idle = 0.5 if not (done.delivered or done.failed) else 0.05
                wait = max(idle, (next_due - self.clock.now()).total_seconds())
                if self.clock.monotonic() + wait > deadline:
                    return total
                self.clock.sleep(wait)
        finally:
            self.close()

    def run(self, stop: threading.Event, every: float = 2.0, catch_up_every: float = 30.0) -> None:
        """Until `stop`: deliver what is due, and every `catch_up_every` seconds evaluate
        the comparisons that changed without an evaluation (a waiver expiring, a crash).
        Sends go on in the workers meanwhile: a slow peer delays neither the others nor the
        catch-up."""
        evaluator = Evaluator(self.config, self.sessions, self.clock)
        next_catch_up = float("-inf")  # the first pass catches up, whatever the clock reads
        try:
            while not stop.is_set():
                try:
                    if self.clock.monotonic() >= next_catch_up:
                        evaluator.catch_up()
                        next_catch_up = self.clock.monotonic() + catch_up_every
                    self.deliver_due(wait=False)
                except SQLAlchemyError as exc:  # the database is away: try again later
                    log.warning("alert delivery paused: %s", type(exc).__name__)
                self.clock.wait(stop, every)
        finally:
            self.close()


def _fields(event: AlertEvent) -> dict[str, object]:
    """What a log line says of an event: never its payload or its destination's URL."""
    return {
        "alert_id": event.id,
        "kind": event.kind,
        "comparison": event.comparison,
        "target": event.target,
        "attempts": event.attempts,
    }


class _Batch:
    """One pass's workers (a destination each): their outcome is logged once the last one
    ends, if any of them sent something (a pass that only finds events waiting says nothing)."""

    def __init__(self, works: list[Future[Drained]]) -> None:
        self.destinations = 0  # those that sent something
        self.left = len(works)
        self.done = Drained()
        self.lock = threading.Lock()
        for work in works:
            work.add_done_callback(self._ended)

    def _ended(self, work: Future[Drained]) -> None:
        with self.lock:
            if not work.cancelled() and work.exception() is None:
                one = work.result()
                self.done.add(one)
                self.destinations += bool(one.delivered or one.failed or one.retrying)
            self.left -= 1
            if self.left:
                return
        done = self.done
        if self.destinations:
            log.info(
                "alert delivery to %d destination(s): %d sent, %d failed, %d to retry",
                self.destinations,
                done.delivered,
                done.failed,
                done.retrying,
                extra={
                    "event": "alerts.batch",
                    "destinations": self.destinations,
                    "sent": done.delivered,
                    "failed": done.failed,
                    "retrying": done.retrying,
                },
            )


def _log_failure(work: Future[Drained]) -> None:
    exc = work.exception() if not work.cancelled() else None
    if isinstance(exc, SQLAlchemyError):  # the database is away: the next pass tries again
        log.warning("alert delivery paused: %s", type(exc).__name__)
    elif exc is not None:
        log.error("alert delivery failed", exc_info=exc)


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

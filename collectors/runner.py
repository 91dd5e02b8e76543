"""Runs one source in isolation: a timeout, errors caught, secrets hashed before anything leaves."""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from collectors import cancel, registry
from collectors.base import CollectorError, FetchContext, Resource, SourceOptions
from collectors.limits import LimitExceeded, Limits, check_document, check_key, clean_text
from collectors.secrets import Census, Redactor
from collectors.secrets.census import redact_resource

log = logging.getLogger(__name__)

# What a source did: app.states.SourceStatus says the same (collectors import nothing of app).
OutcomeStatus = Literal["ok", "failed"]


@dataclass(frozen=True)
class SourceOutcome:
    """What a source produced: redacted resources, or the (scrubbed) reason it failed."""

    name: str
    type: str
    status: OutcomeStatus
    resources: list[Resource] = field(default_factory=list)
    error: str | None = None
    duration_ms: int = 0
    # Which paths were treated as secrets and by which rule (`envparity secrets audit`).
    census: dict[str, Any] | None = None


TIMEOUT_GRACE = 2.0


class SourceTimeout(CollectorError):
    pass


def run_source(options: SourceOptions, ctx: FetchContext, redactor: Redactor) -> SourceOutcome:
    """Collects one source; never raises. A hung fetch is abandoned after `options.timeout`."""
    name = options.name or options.type
    started = time.monotonic()
    try:
        source_type = registry.get(options.type)
        if source_type is None:
            raise CollectorError(f"unknown source type {options.type!r}")

        # Limits and redaction run inside the timeout: no value can hold up the scan.
        def collect() -> tuple[list[Resource], Census]:
            collected = source_type().collect(options, ctx)
            check_limits(collected, ctx.limits)
            return redact_resources(collected, redactor)

        resources, census = _call_with_timeout(collect, options.timeout)
        _check_unique(resources)
    except CollectorError as exc:
        return _failed(options, name, redactor.scrub(str(exc)), started)
    except Exception as exc:  # a bug or an unexpected library error: still only this source
        log.warning("source %s of %s failed unexpectedly: %s", name, ctx.environment, type(exc))
        message = f"unexpected {type(exc).__name__}: {exc}"
        return _failed(options, name, redactor.scrub(message), started)
    return SourceOutcome(
        name=name,
        type=options.type,
        status="ok",
        resources=resources,
        duration_ms=_ms_since(started),
        census=census.as_json(),
    )


def check_limits(resources: list[Resource], limits: Limits) -> None:
    """A source whose output breaks a limit fails whole, naming the resource and the limit
    (never its values): nothing it produced is stored, nothing walks a runaway document."""
    if len(resources) > limits.max_resources:
        raise CollectorError(
            f"{len(resources):,} resources (limits.max_resources is {limits.max_resources:,})"
        )
    for r in resources:
        cancel.checkpoint()
        try:
            check_key(r.key, limits)
            check_document(r.attributes, limits)
        except LimitExceeded as exc:
            raise CollectorError(f"{r.resource_type} {r.key[:80]!r}: {exc}") from None


def redact_resources(
    resources: list[Resource], redactor: Redactor
) -> tuple[list[Resource], Census]:
    """The resources with every secret hashed, and the census of what was hashed where."""
    census = Census(redactor.rules_id)
    out = []
    for r in resources:
        cancel.checkpoint()
        key, attributes = redact_resource(
            redactor, census, r.resource_type, r.key, r.attributes, r.secret_paths
        )
        out.append(Resource(r.category, r.resource_type, key, attributes))
    return out, census


def _check_unique(resources: list[Resource]) -> None:
    seen: set[tuple[str, str]] = set()
    for r in resources:
        identity = (r.resource_type, r.key)
        if identity in seen:
            raise CollectorError(
                f"the source reported {r.resource_type} {r.key!r} twice; identities must be unique"
            )
        seen.add(identity)


def _failed(options: SourceOptions, name: str, error: str, started: float) -> SourceOutcome:
    # One odd byte in a command's stderr must not cost the whole snapshot its storage.
    return SourceOutcome(
        name=name,
        type=options.type,
        status="failed",
        error=clean_text(error),
        duration_ms=_ms_since(started),
    )


def _ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


class _Worker(threading.Thread):
    """A daemon thread that runs sources one after the other, while its pool keeps it."""

    def __init__(self, pool: _Workers) -> None:
        super().__init__(daemon=True, name="envparity-source")
        self.pool = pool
        self.jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()

    def run(self) -> None:
        while True:
            try:
                job = self.jobs.get(timeout=self.pool.idle_for)
            except queue.Empty:
                if self.pool.retire(self):
                    return
                continue  # handed a job just now
            job()
            if not self.pool.rest(self):
                return


class _Workers:
    """The threads sources run in, kept for the next source once one returns (a server runs
    scan after scan): at most `keep` idle, each for `idle_for` seconds. A source that hangs
    past its timeout keeps its thread until it returns; the next source gets another. Daemon
    threads, unlike a ThreadPoolExecutor's: a hung source never holds the process's exit."""

    def __init__(self, keep: int = 16, idle_for: float = 60.0) -> None:
        self.keep, self.idle_for = keep, idle_for
        self.lock = threading.Lock()
        self.idle: list[_Worker] = []

    def submit(self, job: Any) -> None:
        with self.lock:
            worker = self.idle.pop() if self.idle else None
        if worker is None:
            worker = _Worker(self)
            worker.start()
        worker.jobs.put(job)

    def rest(self, worker: _Worker) -> bool:
        """Whether the worker is kept for the next job (else it ends)."""
        with self.lock:
            if len(self.idle) < self.keep:
                self.idle.append(worker)
                return True
            return False

    def retire(self, worker: _Worker) -> bool:
        """Whether an idle worker may end: not when it was just handed a job."""
        with self.lock:
            if worker in self.idle:
                self.idle.remove(worker)
                return True
            return False


_WORKERS = _Workers()


def _call_with_timeout(fn: Any, timeout: float) -> Any:
    """Runs fn in a daemon thread so a hung fetch can neither block the scan nor the exit.

    A little grace on top lets a source that enforces its own timeout (a subprocess, an
    HTTP client) report it in its own words before the scan gives up on it. When the scan
    gives up, the source's stop flag is set: the thread stops at its next checkpoint (an AWS
    call, a chunk read, a resource) and a command it runs is killed.
    """
    results: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def target() -> None:
        try:
            with cancel.scope(stop):
                results.put((True, fn()))
        except BaseException as exc:  # handed to the caller, which decides
            results.put((False, exc))

    _WORKERS.submit(target)
    try:
        ok, value = results.get(timeout=timeout + TIMEOUT_GRACE)
    except queue.Empty:
        stop.set()
        raise SourceTimeout(f"timed out after {timeout:g}s") from None
    if not ok:
        raise value
    return value

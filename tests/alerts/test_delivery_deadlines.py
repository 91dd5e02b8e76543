"""Delivery under hostile peers, with real local servers: a Slack that trickles its answer one
byte at a time neither delays a healthy webhook nor holds `scan` past its deliver_timeout; a
peer that reads and never answers gets an event a bounded number of times; the idempotency
key of a webhook delivery stays the same on every retry of the same event; two deliverers
never send one event at once (the claim outlives the send)."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import threading
import time

import pytest

from app import runtime
from app.alerts.deliver import Deliverer
from tests.alerts.peers import Silent, Trickler
from tests.alerts.recorder import Recorded, Recorder
from tests.alerts.test_delivery import KILL_AFTER_SCAN
from tests.support import Project, alert_events

# Delivery does not depend on the backend: one is enough for the slow, subprocess tests.
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

GRACE = 3.0  # seconds a command may take beyond its deliver_timeout to record and exit


def seed(project: Project, slack_url: str, hook_url: str, alerts: str = "") -> None:
    project.write_config(
        f"""
environments:
  staging:
    sources: [{{type: file, name: dotenv, path: staging.env, format: env}}]
  production:
    sources: [{{type: file, name: dotenv, path: production.env, format: env}}]
comparisons:
  - {{source: staging, target: production}}
alerts:
  slack: {{webhook_url: "{slack_url}", min_severity: info}}
  webhooks:
    - {{name: ops, url: "{hook_url}", min_severity: info}}
  {alerts}
"""
    )
    project.write("staging.env", "LOG_LEVEL=info\nWORKERS=4\n")
    project.write("production.env", "LOG_LEVEL=debug\nWORKERS=4\n")


def scan_subprocess(
    project: Project, limit: float
) -> tuple[subprocess.CompletedProcess[str], float]:
    """`envparity scan --all` as a user runs it, and when it exited (monotonic); a run that
    outlives `limit` seconds is killed and fails the test."""
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "scan", "--all"],
        cwd=project.root,
        env={**os.environ, **project.env()},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = process.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        pytest.fail(f"scan still running after {limit:.0f} s:\n{out}\n{err}")
    ended = time.monotonic()
    return subprocess.CompletedProcess(process.args, process.returncode, out, err), ended


def header(request: Recorded, name: str) -> str | None:
    return next((v for k, v in request.headers.items() if k.lower() == name.lower()), None)


@sqlite_only
@pytest.mark.slow
def test_trickling_slack_delays_neither_the_webhook_nor_the_end_of_scan(
    project: Project, recorder: Recorder
) -> None:
    slack = Trickler(every=1.0)  # a byte a second: no single read ever times out
    try:
        # request_timeout stays 10s: only deliver_timeout can end the send this soon
        seed(project, slack.url("/slack"), recorder.url("/hook"), "deliver_timeout: 2s")
        done, ended = scan_subprocess(project, limit=40)
        assert done.returncode == 0, done.stdout + done.stderr
        [trickled] = slack.requests()
        [hook] = recorder.to("/hook")
        assert hook.at - trickled.at < 3  # the webhook did not wait for Slack
        assert ended - trickled.at < 2 + GRACE  # scan kept to its deliver_timeout
        assert "1 pending" in done.stderr  # Slack's event stays for a later process
        assert {(e.target, e.status) for e in alert_events(project)} == {
            ("slack", "pending"),
            ("webhook:ops", "delivered"),
        }
    finally:
        slack.close()


@sqlite_only
@pytest.mark.slow
def test_the_idempotency_key_is_the_same_on_every_retry_of_an_event(
    project: Project, recorder: Recorder
) -> None:
    seed(project, recorder.url("/slack"), recorder.url("/hook"), "deliver_timeout: 20s")
    recorder.respond("/hook", (503, {}, "busy"))
    scanned = project.invoke("scan", "--all")
    assert scanned.returncode == 0, scanned.stdout + scanned.stderr
    first, retried = recorder.to("/hook", accepted_only=False)
    assert (first.status, retried.status) == (503, 200)
    key = header(first, "Idempotency-Key")
    assert key
    assert header(retried, "Idempotency-Key") == key
    # The Standard Webhooks names carry the same id (webhook-id, with its timestamp).
    assert header(first, "webhook-id") == header(retried, "webhook-id") == key
    assert (header(first, "webhook-timestamp") or "").isdigit()

    project.write("production.env", "LOG_LEVEL=info\nWORKERS=4\n")  # the fix: another event
    scanned = project.invoke("scan", "--all")
    assert scanned.returncode == 0, scanned.stdout + scanned.stderr
    resolved = recorder.to("/hook")[-1]
    assert resolved.json()["event"] == "drift.resolved"
    assert header(resolved, "Idempotency-Key") not in (None, key)


@sqlite_only
@pytest.mark.slow
def test_a_peer_that_reads_and_never_answers_gets_the_event_a_bounded_number_of_times(
    project: Project, recorder: Recorder
) -> None:
    hook = Silent()
    try:
        seed(
            project,
            recorder.url("/slack"),
            hook.url("/hook"),
            "deliver_timeout: 30s\n  request_timeout: 1s\n  max_unanswered: 2",
        )
        started = time.monotonic()
        done, ended = scan_subprocess(project, limit=60)
        assert done.returncode == 0, done.stdout + done.stderr
        received = hook.requests()
        assert len(received) == 2  # max_unanswered, not every attempt up to 12
        keys = {r.headers.get("idempotency-key") for r in received}
        assert len(keys) == 1
        assert None not in keys  # and the receiver can tell they are one event
        assert ended - started < 20  # failed after its second unanswered send, not at 30 s
        failed = [e for e in alert_events(project) if e.target == "webhook:ops"]
        assert [(e.status, e.attempts) for e in failed] == [("failed", 2)]
        assert "no answer" in (failed[0].last_error or "")
        assert len(recorder.to("/slack")) == 1
    finally:
        hook.close()


@pytest.mark.slow
def test_two_deliverers_never_send_one_event_at_once_to_a_trickling_peer(
    project: Project, recorder: Recorder
) -> None:
    hook = Trickler(every=0.25)
    try:
        seed(
            project,
            recorder.url("/slack"),
            hook.url("/hook"),
            "request_timeout: 1s",
        )
        killed = subprocess.run(
            [sys.executable, "-c", KILL_AFTER_SCAN],
            cwd=project.root,
            env={**os.environ, **project.env()},
            capture_output=True,
            timeout=120,
        )
        assert killed.returncode < 0, killed.stderr
        runtimes = [runtime.load(project.config) for _ in range(2)]
        threads = [
            threading.Thread(
                target=Deliverer(rt.config, rt.sessions, rt.redactor).drain,
                args=(5,),
                daemon=True,
            )
            for rt in runtimes
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=5 + GRACE)
        alive = [t for t in threads if t.is_alive()]
        for rt in runtimes:
            rt.close()
        assert alive == []  # each send ended at its deadline: both drains kept to 5 s

        received = hook.requests()
        assert len(received) >= 2  # tried, cut at 1 s, tried again after the backoff
        for earlier, later in itertools.pairwise(received):
            assert earlier.closed_at is not None
            assert earlier.closed_at <= later.at + 0.3  # one send at a time, never two
        for request in received:
            assert request.closed_at is not None
            assert request.closed_at - request.at < 1 + 0.6  # cut at request_timeout
        [event] = [e for e in alert_events(project) if e.target == "webhook:ops"]
        assert event.status == "pending"
        assert event.attempts == len(received)  # every send was one recorded attempt
        assert len(recorder.to("/slack")) == 1
    finally:
        hook.close()


@pytest.mark.slow
def test_in_serve_a_trickling_slack_holds_neither_the_webhook_nor_later_events(
    project: Project, recorder: Recorder
) -> None:
    slack = Trickler(every=1.0)
    try:
        seed(project, slack.url("/slack"), recorder.url("/hook"))  # request_timeout: 10s
        from app.alerts.deliver import Background
        from app.alerts.evaluate import evaluating_scanner

        rt = runtime.load(project.config)
        delivery = Background(Deliverer(rt.config, rt.sessions, rt.redactor), every=0.2)
        delivery.start()
        try:
            scanner = evaluating_scanner(rt)
            scanner.scan("staging")
            scanner.scan("production")
            assert len(recorder.wait_for("/hook", 1, timeout=5)) == 1
            project.write("production.env", "LOG_LEVEL=info\nWORKERS=4\n")  # fixed meanwhile
            scanner.scan("production")
            # Slack is still on its first message; the webhook already has the second.
            hooks = recorder.wait_for("/hook", 2, timeout=5)
            assert [h.json()["event"] for h in hooks] == ["drift.opened", "drift.resolved"]
            assert len(slack.requests()) == 1
        finally:
            slack.close()  # lets the send under way end now, not at its 10 s deadline
            delivery.close()
            rt.close()
    finally:
        slack.close()

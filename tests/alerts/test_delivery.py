"""Alerts end to end: real scans of local files, a real local HTTP server for Slack and a
webhook, the real CLI. Each new drift is posted once, each fix once, nothing lost."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app import runtime
from app.clock import format_time, utcnow
from tests.alerts.recorder import Recorder
from tests.support import FakeClock, Project, alert_events

SECRET_STAGING = "stg-Pa55word-7f3a9c"
SECRET_PRODUCTION = "prd-Pa55word-0b1e2d"
HOOK_KEY = "hook-signing-key-42"

STAGING_REQS = "requests==2.31.0\nflask==3.0.0\n"
PRODUCTION_REQS = "requests==2.32.3\nflask==3.0.0\nhotfix-lib==1.0.0\n"


def config(recorder: Recorder, *, extra: str = "", slack: str | None = None) -> str:
    slack = slack or f'slack: {{webhook_url: "{recorder.url("/slack")}", min_severity: info}}'
    return f"""
environments:
  staging:
    sources:
      - {{type: file, name: dotenv, path: staging/app.env, format: env}}
      - {{type: command, name: pkgs, command: [cat, staging/requirements.txt], parser: pip_freeze}}
  production:
    sources:
      - {{type: file, name: dotenv, path: production/app.env, format: env}}
      - type: command
        name: pkgs
        command: [cat, production/requirements.txt]
        parser: pip_freeze
comparisons:
  - {{source: staging, target: production}}
alerts:
  {slack}
  webhooks:
    - {{name: ops, url: "{recorder.url("/hook")}", secret: "{HOOK_KEY}", min_severity: info}}
  deliver_timeout: 20s
{extra}
"""


def seed(project: Project, recorder: Recorder, **kwargs: str) -> None:
    project.write_config(config(recorder, **kwargs))
    project.write("staging/app.env", f"DB_PASSWORD={SECRET_STAGING}\nLOG_LEVEL=info\n")
    project.write("production/app.env", f"DB_PASSWORD={SECRET_PRODUCTION}\nLOG_LEVEL=info\n")
    project.write("staging/requirements.txt", STAGING_REQS)
    project.write("production/requirements.txt", PRODUCTION_REQS)


def scan(project: Project) -> None:
    result = project.invoke("scan", "--all")
    assert result.returncode == 0, result.stdout + result.stderr


def posted(recorder: Recorder) -> tuple[int, int]:
    """Messages accepted by Slack and by the webhook."""
    return len(recorder.to("/slack")), len(recorder.to("/hook"))


def slack_text(recorded: list) -> str:
    return "\n".join(json.dumps(r.json()) for r in recorded)


@pytest.mark.slow
def test_new_drift_posts_once_and_its_fix_posts_once(project: Project, recorder: Recorder) -> None:
    seed(project, recorder)
    scan(project)
    slack, hook = recorder.to("/slack"), recorder.to("/hook")
    assert (len(slack), len(hook)) == (1, 1)
    message = slack[0].json()
    assert message["blocks"][0]["text"]["text"] == "staging → production: 2 new drift items"
    text = slack_text(slack)
    assert "hotfix-lib" in text
    assert "requests" in text
    assert "2.31.0" in text
    assert "2.32.3" in text

    body = hook[0].json()
    assert body["event"] == "drift.opened"
    assert body["comparison"] == "staging->production"
    assert {i["key"] for i in body["items"]} == {"requests", "hotfix-lib"}
    signed = hook[0].headers["X-Envparity-Signature"]
    stamp, mac = (part.split("=", 1)[1] for part in signed.split(","))
    expected = hmac.new(HOOK_KEY.encode(), f"{stamp}.".encode() + hook[0].body, hashlib.sha256)
    assert hmac.compare_digest(mac, expected.hexdigest())
    assert abs(time.time() - int(stamp)) < 60

    scan(project)  # the same drift again: nothing
    assert posted(recorder) == (1, 1)

    project.write("production/requirements.txt", STAGING_REQS)  # the fix
    scan(project)
    slack, hook = recorder.to("/slack"), recorder.to("/hook")
    assert (len(slack), len(hook)) == (2, 2)
    assert slack[1].json()["blocks"][0]["text"]["text"] == (
        "staging → production: 2 drift items resolved"
    )
    assert hook[1].json()["event"] == "drift.resolved"
    assert {i["key"] for i in hook[1].json()["items"]} == {"requests", "hotfix-lib"}

    scan(project)  # fixed and quiet
    assert posted(recorder) == (2, 2)
    assert {e.status for e in alert_events(project)} == {"delivered"}

    everything = b"".join(r.body for r in recorder.requests)
    for secret in (SECRET_STAGING, SECRET_PRODUCTION, HOOK_KEY):
        assert secret.encode() not in everything
    assert b"hmac-sha256" not in everything


@pytest.mark.slow
def test_429_waits_for_retry_after(project: Project, recorder: Recorder) -> None:
    seed(project, recorder)
    recorder.respond("/slack", (429, {"Retry-After": "2"}, "rate_limited"))
    scan(project)
    tried = recorder.to("/slack", accepted_only=False)
    assert [r.status for r in tried] == [429, 200]
    assert tried[1].at - tried[0].at >= 1.9
    assert len(recorder.to("/hook")) == 1  # the webhook did not wait for Slack


@pytest.mark.slow
def test_5xx_is_retried_with_backoff(project: Project, recorder: Recorder) -> None:
    seed(project, recorder)
    recorder.respond("/hook", (503, {}, "busy"))
    scan(project)
    tried = recorder.to("/hook", accepted_only=False)
    assert [r.status for r in tried] == [503, 200]
    assert tried[1].at - tried[0].at >= 1.5  # backoff, not a hot loop
    assert len(recorder.to("/slack")) == 1


def test_permanent_error_is_failed_visible_and_retried_on_demand(
    project: Project, recorder: Recorder
) -> None:
    seed(project, recorder)
    recorder.respond("/slack", (404, {}, "no_service"))
    scan(project)
    assert len(recorder.to("/slack", accepted_only=False)) == 1  # not retried forever
    failed = [e for e in alert_events(project) if e.status == "failed"]
    assert [(e.target, e.last_error) for e in failed] == [("slack", "HTTP 404: no_service")]

    listing = project.invoke("alerts", "list", "--status", "failed")
    assert "404" in listing.stdout
    assert "slack" in listing.stdout

    from app.main import create_app

    project.write_config(project.config.read_text() + "server: {auth: false}\n")
    with TestClient(create_app(project.config)) as client:
        api = client.get("/api/v1/alerts", params={"status": "failed"}).json()
        assert [(e["id"], e["last_error"]) for e in api] == [(failed[0].id, "HTTP 404: no_service")]
        metrics = client.get("/api/v1/metrics").text
        assert 'envparity_alert_events{status="failed",target="slack"} 1.0' in metrics
        delivered = next(e for e in alert_events(project) if e.status == "delivered")
        again = client.post(f"/api/v1/alerts/{delivered.id}/retry")
        assert again.status_code == 409  # only a failed event is retried

    retried = project.invoke("alerts", "retry", str(failed[0].id))
    assert retried.returncode == 0, retried.stdout + retried.stderr
    assert len(recorder.to("/slack")) == 1
    assert {e.status for e in alert_events(project)} == {"delivered"}


def test_failed_source_never_resolves(project: Project, recorder: Recorder) -> None:
    seed(project, recorder)
    scan(project)
    (project.root / "production/requirements.txt").unlink()  # the source fails
    result = project.invoke("scan", "--all")
    assert result.returncode == 1  # partial
    assert posted(recorder) == (1, 1)


KILL_AFTER_SCAN = """
import os, signal
from app import runtime
from app.alerts.evaluate import evaluating_scanner
rt = runtime.load()
scanner = evaluating_scanner(rt)
scanner.scan("staging")
scanner.scan("production")
os.kill(os.getpid(), signal.SIGKILL)  # after the scan and its evaluation, before delivery
"""


@pytest.mark.slow
def test_killed_before_delivery_is_delivered_by_the_next_process_once(
    project: Project, recorder: Recorder
) -> None:
    seed(project, recorder)
    killed = subprocess.run(
        [sys.executable, "-c", KILL_AFTER_SCAN],
        cwd=project.root,
        env={**os.environ, **project.env()},
        capture_output=True,
        timeout=120,
    )
    assert killed.returncode == -signal.SIGKILL
    assert recorder.requests == []
    assert {e.status for e in alert_events(project)} == {"pending"}

    scan(project)  # the next process: delivers what the killed one left, once
    assert posted(recorder) == (1, 1)
    scan(project)  # and a later one does not resend
    assert posted(recorder) == (1, 1)


def test_waiver_expiry_reopens_and_reminders_repeat(project: Project, recorder: Recorder) -> None:
    seed(project, recorder, extra="severity:\n  - {key: hotfix-lib, severity: critical}\n")
    project.write_config(
        project.config.read_text().replace(
            "deliver_timeout: 20s", "deliver_timeout: 20s\n  repeat_after: 1h"
        )
    )
    expires = format_time(utcnow() + timedelta(minutes=10))
    added = project.invoke(
        "waiver", "add", "--comparison", "staging->production", "--key", "requests",
        "--reason", "upgrade rolling out", "--expires", expires,
    )  # fmt: skip
    assert added.returncode == 0, added.stdout + added.stderr
    scan(project)
    first = recorder.to("/hook")[0].json()
    assert [i["key"] for i in first["items"]] == ["hotfix-lib"]  # requests is waived

    from app.alerts.deliver import Deliverer
    from app.alerts.evaluate import Evaluator

    clock = FakeClock()
    rt = runtime.load(project.config)
    try:
        assert Evaluator(rt.config, rt.sessions, clock).catch_up() == []  # nothing new yet
        # An hour on: the waiver has expired; the critical item has been open past repeat_after.
        clock.advance(3600 + 60)
        Evaluator(rt.config, rt.sessions, clock).catch_up()
        Deliverer(rt.config, rt.sessions, rt.redactor, clock=clock).drain(20)
    finally:
        rt.close()
    kinds = {r.json()["event"]: r.json() for r in recorder.to("/hook")[1:]}
    assert [i["key"] for i in kinds["drift.opened"]["items"]] == ["requests"]
    assert [i["key"] for i in kinds["drift.reminder"]["items"]] == ["hotfix-lib"]
    assert len(recorder.to("/hook")) == 3


@pytest.mark.slow
def test_bot_token_threads_later_messages_under_the_first(
    project: Project, recorder: Recorder
) -> None:
    bot = (
        f'slack: {{bot_token: "xoxb-test-token", channel: "#parity", '
        f'api_url: "{recorder.url("/api/")}", min_severity: info}}'
    )
    seed(project, recorder, slack=bot)
    scan(project)
    project.write("production/requirements.txt", STAGING_REQS)
    scan(project)
    posts = recorder.to("/api/chat.postMessage")
    assert len(posts) == 2
    forms = [json.loads(p.body) if p.body.startswith(b"{") else p.body.decode() for p in posts]
    assert "thread_ts" not in json.dumps(forms[0])
    assert "1700000000.000001" in json.dumps(forms[1])  # threaded under the first message
    assert posts[0].headers["Authorization"] == "Bearer xoxb-test-token"
    assert b"xoxb-test-token" not in b"".join(p.body for p in posts)

    # Another channel: its own thread, not one that lives in #parity.
    project.write_config(project.config.read_text().replace('"#parity"', '"#parity-2"'))
    project.write("production/requirements.txt", PRODUCTION_REQS)
    scan(project)
    project.write("production/requirements.txt", STAGING_REQS)
    scan(project)
    posts = recorder.to("/api/chat.postMessage")
    bodies = [json.loads(p.body) for p in posts]
    assert [b["channel"] for b in bodies] == ["#parity", "#parity", "#parity-2", "#parity-2"]
    assert "thread_ts" not in bodies[2]
    assert bodies[3]["thread_ts"] == "1700000000.000003"


def test_routes_per_comparison(project: Project, recorder: Recorder) -> None:
    seed(project, recorder)
    text = project.config.read_text().replace(
        "  - {source: staging, target: production}",
        "  - source: staging\n    target: production\n"
        "    alerts: {slack: {min_severity: critical}, webhooks: []}",
    )
    project.write_config(text)
    scan(project)
    assert recorder.requests == []  # nothing critical for Slack, no webhook for this one
    assert alert_events(project) == []


@pytest.mark.slow
def test_serve_delivers_what_pushes_open(project: Project, recorder: Recorder) -> None:
    seed(project, recorder)
    project.write_config(project.config.read_text() + "server: {auth: false}\n")
    from app.main import create_app

    def push(env: str, version: str) -> None:
        doc = {
            "taken_at": "2026-11-22T04:00:00Z",
            "sources": [{"name": "agent", "type": "push", "status": "ok", "error": None}],
            "resources": [
                {"source": "agent", "category": "packages", "resource_type": "pip",
                 "key": "openssl", "attributes": {"version": version}}
            ],
        }  # fmt: skip
        answer = client.post(f"/api/v1/environments/{env}/snapshots", json=doc)
        assert answer.status_code == 201, answer.text

    with TestClient(create_app(project.config, alerts=True)) as client:
        push("staging", "3.0.13")
        push("production", "3.0.2")
        assert len(recorder.wait_for("/slack", 1)) == 1
        recorder.wait_for("/hook", 1)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            metrics = client.get("/api/v1/metrics").text
            if 'envparity_alert_events{status="delivered",target="webhook:ops"} 1.0' in metrics:
                break
            time.sleep(0.1)
        assert 'envparity_alert_events{status="delivered",target="slack"} 1.0' in metrics
        assert 'envparity_alert_events{status="failed",target="slack"} 0.0' in metrics
        assert (
            'envparity_alert_deliveries_total{event="drift.opened",outcome="delivered",' in metrics
        )
        listed = client.get("/api/v1/alerts").json()
        assert {e["target"] for e in listed} == {"slack", "webhook:ops"}


@pytest.mark.slow
def test_scheduled_scans_alert_once(project: Project, recorder: Recorder) -> None:
    seed(project, recorder)
    text = project.config.read_text().replace("    sources:\n", "    schedule: 1s\n    sources:\n")
    project.write_config(text)
    from app import scheduler as scheduler_mod
    from app.alerts.deliver import Background, Deliverer
    from app.db.models import Scan

    rt = runtime.load(project.config)
    jobs, leadership = scheduler_mod.build(rt)
    delivery = Background(Deliverer(rt.config, rt.sessions, rt.redactor), every=0.2)
    jobs.start()
    delivery.start()
    try:
        recorder.wait_for("/slack", 1)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # several more scans of each, nobody calling scan
            with rt.sessions.begin() as session:
                if len(session.scalars(select(Scan.id)).all()) >= 6:
                    break
            time.sleep(0.2)
        time.sleep(0.5)
    finally:
        jobs.shutdown(wait=True)
        delivery.close()
        leadership.release()
        rt.close()
    assert posted(recorder) == (1, 1)


@pytest.mark.slow
def test_two_deliverers_send_each_event_once(project: Project, recorder: Recorder) -> None:
    seed(project, recorder)
    subprocess.run(
        [sys.executable, "-c", KILL_AFTER_SCAN],
        cwd=project.root,
        env={**os.environ, **project.env()},
        capture_output=True,
        timeout=120,
    )
    assert len(alert_events(project)) == 2
    assert recorder.requests == []
    import threading

    from app.alerts.deliver import Deliverer

    runtimes = [runtime.load(project.config) for _ in range(2)]
    threads = [
        threading.Thread(target=Deliverer(rt.config, rt.sessions, rt.redactor).drain, args=(20,))
        for rt in runtimes
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for rt in runtimes:
        rt.close()
    assert posted(recorder) == (1, 1)
    assert {e.status for e in alert_events(project)} == {"delivered"}


@pytest.mark.slow
def test_webhook_urls_never_reach_the_logs(project: Project, recorder: Recorder) -> None:
    seed(project, recorder)
    secret_path = "/services/T0PARITY/B0PARITY/xoxsecretPathToken42"
    text = project.config.read_text().replace(recorder.url("/slack"), recorder.url(secret_path))
    project.write_config(text)
    recorder.respond(secret_path, (500, {}, "oops"))  # a retry: more to log
    done = subprocess.run(
        [sys.executable, "-m", "app", "scan", "--all"],
        cwd=project.root,
        env={**os.environ, **project.env(), "ENVPARITY_LOG_LEVEL": "DEBUG"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert len(recorder.to(secret_path)) == 1
    assert "alert #" in done.stderr  # the deliverer did log, at DEBUG
    assert "xoxsecretPathToken42" not in done.stdout + done.stderr
    assert "/hook" not in done.stderr

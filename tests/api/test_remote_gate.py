"""`gate --api` and `push --api` against a real server on loopback: the local exit codes."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from app import runtime
from app.auth.tokens import TokenRepository
from app.clock import utcnow
from tests.support import API_CONFIG as CONFIG
from tests.support import PUSH, FakeClock, Project, scan_on, serving


@pytest.fixture
def server(project: Project, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    project.write_config(CONFIG)
    project.write("staging.yaml", "pool: 10\n")
    project.write("production.yaml", "pool: 20\n")
    rt = runtime.load(project.config)
    with rt.sessions.begin() as session:
        _, token = TokenRepository(session).create("write", "ci", None)
    monkeypatch.setenv("ENVPARITY_TOKEN", token)
    with serving(rt) as url:
        yield url
    rt.close()


def gate(project: Project, url: str, *extra: str) -> Any:
    return project.invoke("gate", "staging", "production", "--api", url, *extra)


@pytest.mark.slow
def test_remote_gate_gives_the_local_exit_codes(project: Project, server: str) -> None:
    missing = gate(project, server, "--format", "json")
    assert missing.returncode == 2
    assert json.loads(missing.stdout)["status"] == "missing"
    fresh = gate(project, server, "--format", "json", "--fresh", "--timeout", "60")
    assert fresh.returncode == 1
    body = json.loads(fresh.stdout)
    assert body["status"] == "fail"
    assert body["failing"][0]["path"] == "pool"
    junit = gate(project, server, "--format", "junit")
    assert junit.returncode == 1
    assert 'failures="1"' in junit.stdout
    headers = {"Authorization": f"Bearer {os.environ['ENVPARITY_TOKEN']}"}
    httpx.post(
        server + "/api/v1/waivers", json={"reason": "bigger pool", "path": "pool"}, headers=headers
    )
    passed = gate(project, server, "--format", "table")
    assert passed.returncode == 0
    assert "PASS" in passed.stdout


def test_remote_gate_without_token_or_server_is_exit_2(
    project: Project, server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENVPARITY_TOKEN", "envp_wrong")
    denied = gate(project, server)
    assert denied.returncode == 2
    assert "401" in denied.stderr
    unreachable = gate(project, "http://127.0.0.1:9")
    assert unreachable.returncode == 2
    assert "cannot reach" in unreachable.stderr


def test_push_through_the_api(project: Project, server: str) -> None:
    path = project.root / "push.json"
    path.write_text(json.dumps(PUSH))
    stored = project.invoke("push", "fleet", str(path), "--api", server)
    assert stored.returncode == 0, stored.stderr
    assert "stored snapshot #" in stored.stdout
    bad = json.loads(json.dumps(PUSH))
    bad["resources"][0]["key"] = ""
    path.write_text(json.dumps(bad))
    refused = project.invoke("push", "fleet", str(path), "--api", server)
    assert refused.returncode == 2
    assert "$.resources[0].key" in refused.stderr


def test_push_through_the_api_from_stdin_and_a_syntax_error_named_here(
    project: Project, server: str
) -> None:
    piped = project.run("push", "fleet", "-", "--api", server, input=json.dumps(PUSH))
    assert piped.returncode == 0, piped.stderr
    assert "stored snapshot #" in piped.stdout
    path = project.root / "push.json"
    path.write_text(json.dumps(PUSH, indent=1).replace('"ok"', "ok", 1))
    broken = project.invoke("push", "fleet", str(path), "--api", server)
    assert broken.returncode == 2
    assert f"{path}:" in broken.stderr
    assert "not valid JSON" in broken.stderr


def test_remote_gate_on_partial_or_stale_data_is_exit_2(project: Project, server: str) -> None:
    assert gate(project, server, "--fresh").returncode == 1
    (project.root / "production.yaml").unlink()
    partial = gate(project, server, "--format", "json", "--fresh")
    assert partial.returncode == 2
    assert json.loads(partial.stdout)["status"] == "partial"


def test_remote_gate_on_stale_data_is_exit_2(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.write_config(
        CONFIG.replace("gate: {fail_on: warning}", "gate: {fail_on: warning, max_age: 60s}")
    )
    project.write("staging.yaml", "pool: 10\n")
    project.write("production.yaml", "pool: 10\n")
    # Scanned by a host whose clock read 2 minutes ago: snapshots older than max_age.
    ago = FakeClock(start=utcnow() - timedelta(minutes=2))
    scan_on(ago, project.config, "staging", "production")
    rt = runtime.load(project.config)
    with rt.sessions.begin() as session:
        _, token = TokenRepository(session).create("gate", "ci", None)
    monkeypatch.setenv("ENVPARITY_TOKEN", token)
    with serving(rt) as url:
        stale = gate(project, url, "--format", "json")
        again = gate(project, url, "--format", "json")  # the cached answer: still stale
        # A fresh scan changes the latest snapshots: the stale answer is not served again.
        scan_on(FakeClock(start=utcnow()), project.config, "staging", "production")
        fresh = gate(project, url, "--format", "json")
    rt.close()
    assert stale.returncode == again.returncode == 2
    assert json.loads(stale.stdout)["status"] == json.loads(again.stdout)["status"] == "stale"
    assert json.loads(again.stdout)["reasons"] == json.loads(stale.stdout)["reasons"]
    assert fresh.returncode == 0, fresh.stdout
    assert json.loads(fresh.stdout)["status"] == "pass"


@pytest.mark.slow
def test_remote_gate_category_narrows_what_is_judged(project: Project, server: str) -> None:
    assert gate(project, server, "--fresh").returncode == 1  # config drifted
    narrowed = gate(project, server, "--format", "json", "--category", "packages")
    assert narrowed.returncode == 0
    assert json.loads(narrowed.stdout)["status"] == "pass"

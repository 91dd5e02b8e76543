"""Tokens from the command line, and `serve` refusing to run open on a public address."""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app import runtime
from app.auth.tokens import TokenRepository
from app.main import create_app
from tests.support import Project

CONFIG = """
environments:
  staging:
    sources:
      - type: command
        name: slow
        command: [{python}, -c, "import time; time.sleep(1.5); print('x')"]
        parser: lines
"""


def client_for(project: Project) -> Any:
    rt = runtime.load(project.config)
    return rt, TestClient(create_app(runtime=rt))


def test_token_create_list_revoke(project: Project) -> None:
    project.write_config(CONFIG.format(python=sys.executable))
    created = project.invoke("token", "create", "--scope", "read", "--name", "dashboard")
    assert created.returncode == 0
    token = created.stdout.strip()
    assert token.startswith("envp_")
    assert len(token) > 40
    listed = project.invoke("token", "list")
    assert "dashboard" in listed.stdout
    assert token not in listed.stdout  # never shown again
    rt, client = client_for(project)
    with client:
        ok = client.get("/api/v1/environments", headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200
    rt.close()
    assert project.invoke("token", "revoke", "1").returncode == 0
    rt, client = client_for(project)  # a new process: no cached verification
    with client:
        denied = client.get("/api/v1/environments", headers={"Authorization": f"Bearer {token}"})
        assert denied.status_code == 401
        assert denied.json()["error"] == "the API token is unknown, revoked or expired"
    rt.close()
    assert project.invoke("token", "create", "--scope", "root").returncode == 2


def test_expired_token_is_refused(project: Project) -> None:
    project.write_config(CONFIG.format(python=sys.executable))
    rt = runtime.load(project.config)
    with rt.sessions.begin() as session:  # `token create` refuses a past expiry: made here
        _, token = TokenRepository(session).create("admin", "old", datetime(2020, 1, 1, tzinfo=UTC))
    rt.close()
    assert token.startswith("envp_")
    rt, client = client_for(project)
    with client:
        assert (
            client.get(
                "/api/v1/environments", headers={"Authorization": f"Bearer {token}"}
            ).status_code
            == 401
        )
    rt.close()


@pytest.mark.parametrize("expires", ["2020-01-01", "2020-01-01T10:00:00Z", "yesterday"])
def test_token_create_refuses_an_expiry_in_the_past(project: Project, expires: str) -> None:
    project.write_config(CONFIG.format(python=sys.executable))
    if expires == "yesterday":
        expires = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    refused = project.invoke("token", "create", "--scope", "read", "--expires", expires)
    assert refused.returncode == 2
    assert refused.stdout == ""  # no token printed
    assert f"--expires {expires} is in the past" in refused.stderr
    assert "give a later date or time" in refused.stderr
    assert "envp_" not in project.invoke("token", "list").stdout  # none was created


def test_token_create_takes_a_future_expiry(project: Project) -> None:
    project.write_config(CONFIG.format(python=sys.executable))
    later = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()
    created = project.invoke("token", "create", "--scope", "read", "--expires", later)
    assert created.returncode == 0, created.stderr
    assert created.stdout.strip().startswith("envp_")


@pytest.mark.slow
def test_a_second_scan_trigger_answers_the_running_scan(project: Project) -> None:
    project.write_config(CONFIG.format(python=sys.executable))
    token = project.invoke("token", "create", "--scope", "write").stdout.strip()
    headers = {"Authorization": f"Bearer {token}"}
    rt, client = client_for(project)
    with client:
        first = client.post("/api/v1/environments/staging/scans", headers=headers)
        assert first.status_code == 202
        second = client.post("/api/v1/environments/staging/scans", headers=headers)
        assert second.status_code == 200
        assert second.json() == {"scan_id": first.json()["scan_id"], "already_running": True}
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            scan = client.get(f"/api/v1/scans/{first.json()['scan_id']}", headers=headers).json()
            if scan["status"] != "running":
                break
            time.sleep(0.2)
        assert scan["status"] == "complete"
    rt.close()


def test_serve_refuses_auth_off_on_a_public_address(project: Project) -> None:
    project.write_config("server: {auth: false}\nenvironments:\n  staging: {}\n")
    refused = project.invoke("serve", "--host", "0.0.0.0", "--port", "1")
    assert refused.returncode == 2
    assert "auth can be off only on a loopback address" in refused.stderr


def test_auth_off_on_loopback_needs_no_token(project: Project) -> None:
    project.write_config("server: {auth: false}\nenvironments:\n  staging: {}\n")
    rt, client = client_for(project)
    with client:
        assert client.get("/api/v1/environments").status_code == 200
    rt.close()

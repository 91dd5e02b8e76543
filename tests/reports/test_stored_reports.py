"""`diff` of a declared comparison serves the report stored by the last evaluation, and it
says exactly what a fresh comparison says; anything that would change the report (a new
snapshot, a waiver, a rule, an expiry) makes it compute afresh."""

from __future__ import annotations

import json

import pytest

from tests.support import Project


def ids(project: Project) -> tuple[str, str]:
    report = json.loads(project.invoke("diff", "staging", "production", "-f", "json").stdout)
    return (
        f"staging@{report['left']['snapshot_id']}",
        f"production@{report['right']['snapshot_id']}",
    )


@pytest.mark.parametrize("fmt", ["json", "markdown", "junit", "table"])
def test_stored_report_says_what_a_fresh_comparison_says(examples: Project, fmt: str) -> None:
    left, right = ids(examples)  # refs by id: never served from the stored report
    stored = examples.invoke("diff", "staging", "production", "--format", fmt)
    fresh = examples.invoke("diff", left, right, "--format", fmt)
    assert stored.returncode == fresh.returncode == 1
    assert stored.stdout == fresh.stdout
    assert stored.stdout.strip()


def test_a_new_waiver_or_rule_is_seen_at_once(examples: Project) -> None:
    before = json.loads(examples.invoke("diff", "staging", "production", "-f", "json").stdout)
    assert before["summary"]["unwaived"] == 6
    added = examples.invoke(
        "waiver", "add", "--comparison", "staging->production", "--key", "requests",
        "--path", "version", "--reason", "rolling out",
    )  # fmt: skip
    assert added.returncode == 0, added.stdout + added.stderr
    after = json.loads(examples.invoke("diff", "staging", "production", "-f", "json").stdout)
    assert after["summary"]["unwaived"] == 5

    config = examples.config.read_text() + "severity:\n  - {key: requests, severity: critical}\n"
    examples.write_config(config)
    ruled = json.loads(examples.invoke("diff", "staging", "production", "-f", "json").stdout)
    requests = next(i for i in ruled["items"] if i["key"] == "requests")
    assert requests["severity"] == "critical"


def test_a_new_snapshot_is_seen_at_once(examples: Project) -> None:
    path = examples.root / "deploy/production/app.yaml"
    path.write_text(path.read_text().replace("pool_size: 20", "pool_size: 10"))
    assert examples.invoke("scan", "production").returncode == 0
    report = json.loads(examples.invoke("diff", "staging", "production", "-f", "json").stdout)
    assert not any(i["path"] == "database.pool_size" for i in report["items"])


def test_api_serves_the_stored_report_as_a_fresh_one_reads(examples: Project) -> None:
    from fastapi.testclient import TestClient

    from app.main import create_app

    examples.write_config(examples.config.read_text() + "server: {auth: false}\n")
    left, right = ids(examples)
    with TestClient(create_app(examples.config)) as client:
        stored = client.get("/api/v1/comparisons/staging/production/report")
        by_refs = client.get("/api/v1/diff", params={"left": "staging", "right": "production"})
        fresh = client.get("/api/v1/diff", params={"left": left, "right": right})
    assert stored.status_code == by_refs.status_code == fresh.status_code == 200
    assert stored.headers["content-type"] == "application/json"
    assert stored.json() == by_refs.json() == fresh.json()


def test_the_stored_path_loads_no_orm_and_no_engine(examples: Project) -> None:
    """What keeps `diff` of a declared comparison fast (benchmarks/bench_diff.py)."""
    import os
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "app", "diff", "staging", "production",
         "--format", "json"],
        cwd=examples.root, env={**os.environ, **examples.env()},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr[-2000:]
    assert json.loads(done.stdout)["summary"]["unwaived"] == 6
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()}
    # Reading a config loads the named source types' modules only, never the AWS SDK.
    for heavy in ("sqlalchemy.orm", "app.db.models", "app.diff.engine", "deepdiff", "boto3"):
        assert heavy not in imported, heavy


@pytest.mark.parametrize("argv", [["--help"], ["diff", "--help"], ["--version"]])
def test_help_loads_neither_the_database_nor_the_config(argv: list[str]) -> None:
    """What keeps `--help` under half a second (benchmarks/bench_startup.py): the command
    line imports Typer and Rich (Typer itself loads pydantic for a command's parameters), and
    the database layer, the settings and the config models only in the commands that use
    them."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "app", *argv],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()}
    for heavy in ("sqlalchemy", "pydantic_settings", "app.config", "app.runtime", "app.db"):
        assert heavy not in imported, heavy


def test_a_scan_with_no_alert_to_send_loads_no_http_client(examples: Project) -> None:
    """With nothing in the outbox (no alerts configured), `scan` never imports the Slack and
    webhook senders nor the HTTP client they use."""
    import os
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "app", "scan", "staging"],
        cwd=examples.root, env={**os.environ, **examples.env()},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()}
    assert "app.db.models" in imported  # the scan did store its snapshot
    for heavy in ("httpx", "app.alerts.transport", "app.alerts.senders", "app.alerts.deliver"):
        assert heavy not in imported, heavy
    if examples.database_url.startswith("sqlite"):  # nor, on SQLite, the PostgreSQL dialect
        assert "sqlalchemy.dialects.postgresql" not in imported

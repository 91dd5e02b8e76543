"""Scans through the real CLI and service, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import sys
import threading
import time
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from app import runtime
from app.clock import SystemClock
from app.db.models import Scan
from app.errors import ScanInProgress
from app.snapshots import service
from app.snapshots.repository import SnapshotRepository
from tests.support import Project

TWO_SOURCES = """
environments:
  staging:
    sources:
      - {type: file, name: app-config, path: deploy/staging/app.yaml}
      - type: command
        name: packages
        command: [cat, deploy/staging/requirements.txt]
        parser: pip_freeze
  production:
    sources:
      - {type: file, name: app-config, path: deploy/production/app.yaml}
  pushed: {}
"""


@pytest.fixture
def two_envs(project: Project) -> Project:
    project.write_config(TWO_SOURCES)
    project.write("deploy/staging/app.yaml", "db: {host: orders-db-staging, pool_size: 10}\n")
    project.write("deploy/staging/requirements.txt", "requests==2.32.3\nurllib3==2.2.3\n")
    return project


@pytest.mark.slow
def test_scan_all_stores_complete_snapshots(two_envs: Project) -> None:
    two_envs.write("deploy/production/app.yaml", "db: {host: orders-db-production}\n")
    result = two_envs.run("scan", "--all")
    assert result.returncode == 0, result.stderr
    assert "staging: app-config ok (1 resources" in result.stdout
    assert "staging: packages ok (2 resources" in result.stdout
    assert "push-only, not scanned: pushed" in result.stdout
    exported = json.loads(two_envs.invoke("export", "staging").stdout)
    assert exported["status"] == "complete"
    assert {r["key"]: r["attributes"] for r in exported["resources"]} == {
        "deploy/staging/app.yaml": {"db": {"host": "orders-db-staging", "pool_size": 10}},
        "requests": {"version": "2.32.3"},
        "urllib3": {"version": "2.2.3"},
    }


def test_missing_file_gives_partial_snapshot_and_exit_1(two_envs: Project) -> None:
    two_envs.write("deploy/staging/requirements.txt", "requests==2.32.3\n")
    (two_envs.root / "deploy/staging/app.yaml").unlink()
    result = two_envs.invoke("scan", "staging")
    assert result.returncode == 1
    assert "file not found: deploy/staging/app.yaml" in result.stdout
    exported = json.loads(two_envs.invoke("export", "staging").stdout)
    assert exported["status"] == "partial"
    sources = {s["name"]: s for s in exported["sources"]}
    assert sources["app-config"]["status"] == "failed"
    assert "deploy/staging/app.yaml" in sources["app-config"]["error"]
    assert sources["packages"]["status"] == "ok"
    assert [r["key"] for r in exported["resources"]] == ["requests"]


def test_every_source_failing_gives_exit_2(two_envs: Project) -> None:
    result = two_envs.invoke("scan", "production")
    assert result.returncode == 2
    assert "failed" in result.stdout


def test_unknown_environment_and_push_only_are_clear_errors(two_envs: Project) -> None:
    result = two_envs.invoke("scan", "prod")
    assert result.returncode == 2
    assert "'prod' is not declared" in result.stderr
    result = two_envs.invoke("scan", "pushed")
    assert result.returncode == 2
    assert "push-only" in result.stderr


def test_rescan_of_unchanged_sources_stores_no_document(two_envs: Project) -> None:
    assert two_envs.invoke("scan", "staging").returncode == 0
    rt = runtime.load(two_envs.config)
    with rt.sessions.begin() as session:
        before = SnapshotRepository(session).count_documents()
    scanner = service.Scanner(rt.config, rt.sessions, rt.redactor)
    second = scanner.scan("staging")
    assert second.status == "complete"
    with rt.sessions.begin() as session:
        repo = SnapshotRepository(session)
        assert repo.count_documents() == before
        assert len(repo.list_snapshots("staging")) == 2
    rt.close()


@pytest.mark.slow
def test_hung_source_times_out_and_the_others_complete(project: Project) -> None:
    project.write_config(
        f"""
        environments:
          staging:
            sources:
              - type: command
                name: hangs
                command: [{sys.executable}, -c, "import time; time.sleep(30)"]
                parser: lines
                timeout: 1
              - type: command
                name: quick
                command: [echo, hello]
                parser: lines
        """
    )
    started = time.monotonic()
    result = project.run("scan", "staging")
    assert time.monotonic() - started < 20
    assert result.returncode == 1
    assert "hangs failed" in result.stdout
    assert "timed out after 1s" in result.stdout
    assert "quick ok (1 resources" in result.stdout


@pytest.mark.slow
def test_second_scan_of_one_environment_is_refused_or_waits(project: Project) -> None:
    # The first scan's command runs until the test releases it: however slowly the second
    # process starts, the first scan is still running when it asks.
    release = project.root / "release"
    wait_for_release = (
        "import os, time; "
        f"[time.sleep(0.05) for _ in iter(lambda: os.path.exists({str(release)!r}), True)]; "
        "print('x')"
    )
    project.write_config(
        f"""
        environments:
          staging:
            sources:
              - type: command
                command: [{sys.executable}, -c, {json.dumps(wait_for_release)}]
                parser: lines
        """
    )
    rt = runtime.load(project.config)
    scanner = service.Scanner(rt.config, rt.sessions, rt.redactor)
    first = threading.Thread(target=scanner.scan, args=("staging",))
    first.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with rt.sessions.begin() as session:
            if session.scalar(select(Scan).where(Scan.status == "running")) is not None:
                break
        time.sleep(0.05)
    with pytest.raises(ScanInProgress, match="already running"):
        scanner.scan("staging")
    result = project.run("scan", "staging")
    assert result.returncode == 2
    assert "already running (scan #1" in result.stderr
    release.touch()
    waited = scanner.scan("staging", wait=30)  # waits for the first, then runs
    first.join()
    assert waited.status == "complete"
    with rt.sessions.begin() as session:
        statuses = session.scalars(select(Scan.status).order_by(Scan.id)).all()
    assert statuses == ["complete", "complete"]
    rt.close()


def test_scan_left_running_by_a_dead_process_is_taken_over(two_envs: Project) -> None:
    from app.db.models import EnvironmentRow

    two_envs.write("deploy/staging/app.yaml", "a: 1\n")
    rt = runtime.load(two_envs.config)
    with rt.sessions.begin() as session:
        env = EnvironmentRow(name="staging")
        session.add(env)
        session.flush()
        # pid 999999999 cannot exist on this host
        import socket

        session.add(
            Scan(
                environment=env,
                status="running",
                trigger="cli",
                owner=f"{socket.gethostname()}:999999999",
            )
        )
    result = service.Scanner(rt.config, rt.sessions, rt.redactor).scan("staging")
    assert result.status == "complete"
    with rt.sessions.begin() as session:
        assert session.scalars(select(Scan.status).order_by(Scan.id)).all() == [
            "abandoned",
            "complete",
        ]
    rt.close()


@pytest.mark.slow
def test_running_scan_keeps_its_heartbeat_fresh(project: Project) -> None:
    project.write_config(
        f"""
        environments:
          staging:
            sources:
              - type: command
                command: [{sys.executable}, -c, "import time; time.sleep(1.5); print('x')"]
                parser: lines
        """
    )
    rt = runtime.load(project.config)
    beats: list[object] = []
    scanner = service.Scanner(rt.config, rt.sessions, rt.redactor, heartbeat_every=0.2)
    worker = threading.Thread(target=scanner.scan, args=("staging",))
    worker.start()
    deadline = time.monotonic() + 10
    while worker.is_alive() and time.monotonic() < deadline:
        with rt.sessions.begin() as session:
            running = session.scalar(select(Scan).where(Scan.status == "running"))
            if running is not None:
                beats.append(running.heartbeat_at)
        time.sleep(0.1)
    worker.join()
    assert len(set(beats)) >= 3  # the heartbeat moved while the scan ran
    rt.close()


class _ClockAhead(SystemClock):
    """A host whose clock runs two hours ahead."""

    def now(self) -> datetime:
        return super().now() + timedelta(hours=2)


def test_a_scan_from_a_host_whose_clock_runs_ahead_cannot_become_latest(
    two_envs: Project, database_url: str
) -> None:
    rt = runtime.load(two_envs.config)
    try:
        ahead = service.Scanner(rt.config, rt.sessions, rt.redactor, clock=_ClockAhead())
        if not database_url.startswith("postgresql"):
            # SQLite lives on the scanning host and shares its clock: nothing to compare with.
            assert ahead.scan("staging").status == "complete"
            return
        with pytest.raises(service.ClockAhead, match=r"2h 0m ahead of the database server's"):
            ahead.scan("staging")
        with rt.sessions.begin() as session:
            scan = session.scalars(select(Scan)).one()
            assert scan.status == "failed"
            assert "clock" in (scan.error or "")
            assert SnapshotRepository(session).latest("staging") is None
        right = service.Scanner(rt.config, rt.sessions, rt.redactor).scan("staging")
        with rt.sessions.begin() as session:
            latest = SnapshotRepository(session).latest("staging")
            assert latest is not None
            assert latest.id == right.snapshot_id
    finally:
        rt.close()  # a connection left open is a ResourceWarning (an error) in a later test

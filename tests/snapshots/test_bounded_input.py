"""Hostile and oversized input, at every door: pushes and sources are refused or fail alone,
naming the limit; nothing runs away in time or memory; nothing is stored half."""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from app.diff.normalize import Normalizer
from tests.support import Project

CONFIG = """
environments:
  fleet: {}
"""


def push_document(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "taken_at": "2026-11-22T04:00:00Z",
        "sources": [{"name": "agent", "type": "push", "status": "ok", "error": None}],
        "resources": [
            {
                "source": "agent",
                "category": "config",
                "resource_type": "file",
                "key": "/etc/app.yaml",
                "attributes": {"pool": 10},
            }
        ],
    }
    doc.update(changes)
    return doc


def push(project: Project, body: str) -> Any:
    path = project.write("push.json", body)
    return project.invoke("push", "fleet", str(path))


def deep_list(depth: int) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value, [1]]
    return value


def test_normalizing_nested_lists_is_not_exponential() -> None:
    # Each level's label used to embed its child's JSON: depth 20 took seconds and GBs.
    started = time.perf_counter()
    normalized, _secrets, _leaks = Normalizer({"env": "staging"}).document({"v": deep_list(60)})
    assert time.perf_counter() - started < 1.0
    assert len(json.dumps(normalized)) < 100_000


@pytest.fixture
def fleet(project: Project) -> Project:
    project.write_config(CONFIG)
    return project


def test_a_deep_push_is_refused_quickly_naming_the_limit(fleet: Project) -> None:
    resource = push_document()["resources"][0]
    body = json.dumps(push_document(resources=[{**resource, "attributes": {"v": deep_list(100)}}]))
    started = time.monotonic()
    result = push(fleet, body)
    assert time.monotonic() - started < 15
    assert result.returncode == 2, result.stderr
    assert "limits.max_depth" in result.stderr
    assert "nothing stored" in result.stderr
    assert "no snapshot" in fleet.invoke("export", "fleet").stderr


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (json.dumps(push_document(taken_at="2099-01-01T00:00:00Z")), "ahead of this server"),
        (json.dumps(push_document(taken_at="1969-12-31T00:00:00Z")), "before 1970"),
        (
            json.dumps(push_document()).replace('"pool": 10', '"pool": NaN'),
            "NaN is not a JSON number",
        ),
        (
            json.dumps(push_document()).replace('"pool": 10', '"pool": 10, "pool": 11'),
            "duplicate key 'pool'",
        ),
        (
            json.dumps(
                push_document(sources=[{"name": "agent", "status": "failed", "error": "a\x00b"}])
                | {"resources": []}
            ),
            "NUL character",
        ),
        (
            json.dumps(
                push_document(resources=[{**push_document()["resources"][0], "key": "k" * 70_000}])
            ),
            "limits.max_key_length",
        ),
    ],
    ids=["future", "before-1970", "nan", "duplicate-key", "nul", "long-key"],
)
def test_a_push_that_no_database_column_or_clock_can_hold_is_refused(
    fleet: Project, body: str, says: str
) -> None:
    result = push(fleet, body)
    assert result.returncode == 2, result.stderr
    assert says in result.stderr
    assert "no snapshot" in fleet.invoke("export", "fleet").stderr


def test_a_push_within_the_clock_skew_is_stored(fleet: Project) -> None:
    soon = (datetime.now(UTC) + timedelta(minutes=2)).isoformat()
    assert push(fleet, json.dumps(push_document(taken_at=soon))).returncode == 0


def test_limits_are_configurable(fleet: Project) -> None:
    fleet.write_config(CONFIG + "limits: {max_depth: 8}\n")
    resource = push_document()["resources"][0]
    body = json.dumps(push_document(resources=[{**resource, "attributes": {"v": deep_list(10)}}]))
    result = push(fleet, body)
    assert result.returncode == 2
    assert "nested deeper than 8 levels" in result.stderr


SOURCES = """
environments:
  staging:
    sources:
      - {type: file, name: good, path: good.yaml}
      - {type: file, name: nested, path: nested.json}
      - {type: file, name: bomb, path: bomb.yaml}
      - {type: file, name: device, path: /dev/zero, format: json}
      - type: command
        name: flood
        command: [PYTHON, -c, "import sys; sys.stdout.write('x' * 3_000_000)"]
        parser: lines
      - {type: command, name: noisy, command: [PYTHON, noisy.py], parser: lines}
limits: {max_source_bytes: 1000000}
""".replace("PYTHON", sys.executable)

BOMB = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 9) + "]\n" for i in range(8)
)


@pytest.mark.slow
def test_hostile_sources_fail_alone_and_the_rest_is_stored(project: Project) -> None:
    """One scan (a subprocess: nothing runs away in the test's own process) of every kind of
    hostile source, a NUL byte in a failed source's error among them: it costs nothing else."""
    project.write_config(SOURCES)
    project.write("good.yaml", "pool: 10\n")
    project.write("nested.json", "[" * 200 + "]" * 200)  # 400 bytes, 200 levels
    project.write("bomb.yaml", BOMB)  # 342 bytes
    project.write("noisy.py", "import sys\nsys.stderr.write('bad\\x00byte')\nsys.exit(3)\n")
    started = time.monotonic()
    scan = project.run("scan", "staging")
    assert time.monotonic() - started < 60
    assert scan.returncode == 1, scan.stdout + scan.stderr  # partial: the good source is in
    out = scan.stdout
    assert "nested failed" in out
    assert "limits.max_depth" in out
    assert "bomb failed" in out
    assert "YAML bomb" in out
    assert "device failed" in out
    assert "flood failed" in out
    assert "noisy failed" in out
    assert out.count("limits.max_source_bytes") == 2
    exported = project.invoke("export", "staging")  # in process: the same command, faster
    assert exported.returncode == 0, exported.stderr
    export = json.loads(exported.stdout)
    assert [r["key"] for r in export["resources"]] == ["good.yaml"]
    (noisy,) = [s for s in export["sources"] if s["name"] == "noisy"]
    assert "\x00" not in noisy["error"]
    assert "bad\ufffdbyte" in noisy["error"]


def test_an_id_past_the_column_range_names_nothing(fleet: Project) -> None:
    assert push(fleet, json.dumps(push_document())).returncode == 0
    for ref in ("fleet@2147483648", "fleet@99999999999999999999"):
        result = fleet.invoke("diff", ref, "fleet")
        assert result.returncode == 2, result.stdout + result.stderr
        assert "no snapshot #" in result.stderr
    assert fleet.invoke("snapshots", "rm", "2147483648").returncode == 2


def test_snapshots_rm_removes_one_and_says_what_changed(fleet: Project) -> None:
    first = push_document(taken_at="2026-11-22T04:00:00Z")
    second = push_document(taken_at="2026-11-22T05:00:00Z")
    second["resources"][0]["attributes"] = {"pool": 99}
    assert push(fleet, json.dumps(first)).returncode == 0
    assert push(fleet, json.dumps(second)).returncode == 0
    assert fleet.invoke("baseline", "set", "fleet").returncode == 0  # the latest: #2
    listed = fleet.invoke("snapshots", "list", "fleet")
    assert listed.returncode == 0
    assert "2026-11-22T05:00:00Z" in listed.stdout
    removed = fleet.invoke("snapshots", "rm", "2")
    assert removed.returncode == 0, removed.stderr
    assert "removed snapshot #2 of fleet (push, taken 2026-11-22T05:00:00Z" in removed.stdout
    assert "it was fleet's baseline" in removed.stdout
    assert "fleet's latest snapshot is now #1" in removed.stdout
    export = json.loads(fleet.invoke("export", "fleet").stdout)
    assert export["snapshot_id"] == 1
    assert export["resources"][0]["attributes"] == {"pool": 10}
    assert fleet.invoke("snapshots", "rm", "2").returncode != 0  # gone


def _gone(pid: int, wait: float = 5.0) -> bool:
    """Whether the process is dead: no such process, or a zombie nobody reaped yet."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except FileNotFoundError:
            return True
        if "State:\tZ" in status:
            return True
        time.sleep(0.1)
    return False


def test_sigterm_to_a_scan_releases_its_lock_and_kills_its_commands(project: Project) -> None:
    import os
    import signal
    import subprocess

    marker = project.root / "child.pid"
    project.write(
        "slow.py",
        f"""
        import os, subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
        open({str(marker)!r}, "w").write(str(child.pid))
        time.sleep(120)
        """,
    )
    project.write_config(
        f"""
        environments:
          staging:
            sources:
              - {{type: command, name: slow, command: [{sys.executable}, slow.py], parser: lines,
                  timeout: 120}}
        """
    )
    env = {**os.environ, **project.env()}
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "scan", "staging"],
        cwd=project.root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not marker.exists() or not marker.read_text():
        assert time.monotonic() < deadline, "the command never started"
        time.sleep(0.1)
    child = int(marker.read_text())
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "lock released" in err
    assert _gone(child)  # the command's child went with its process group
    # The lock row says the scan ended: another host (which cannot see whether this
    # process is alive) is not kept waiting for the stale-lock timeout.
    from sqlalchemy import create_engine, text

    engine = create_engine(project.database_url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT status, error FROM scans")).all()
    engine.dispose()
    assert [status for status, _error in rows] == ["failed"]
    assert "SIGTERM" in rows[0][1]

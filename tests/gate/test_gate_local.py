"""The local gate: never passes on data it does not have; fails on drift at or above fail_on."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from app.clock import utcnow
from tests.support import FakeClock, Project, scan_on

CONFIG = """
environments:
  staging:
    sources:
      - {type: file, name: app, path: staging.yaml}
      - {type: command, name: pkgs, command: [cat, staging.txt], parser: pip_freeze}
  production:
    sources:
      - {type: file, name: app, path: production.yaml}
      - {type: command, name: pkgs, command: [cat, production.txt], parser: pip_freeze}
comparisons:
  - source: staging
    target: production
    gate: {fail_on: %s, max_age: %s, categories: %s}
"""


ENVIRONMENTS = ("staging", "production")


def setup(
    project: Project,
    fail_on: str = "warning",
    max_age: str = "1h",
    categories: str = "[config, packages]",
) -> Project:
    project.write_config(CONFIG % (fail_on, max_age, categories))
    project.write("staging.yaml", "pool_size: 10\nlog: info\n")
    project.write("production.yaml", "pool_size: 20\nlog: info\n")
    project.write("staging.txt", "requests==2.32.3\n")
    project.write("production.txt", "requests==2.32.3\n")
    return project


def gate(project: Project, *extra: str) -> tuple[int, dict[str, Any]]:
    result = project.invoke("gate", "staging", "production", "--format", "json", *extra)
    return result.returncode, json.loads(result.stdout)


def test_no_data_is_missing_exit_2(project: Project) -> None:
    setup(project)
    code, body = gate(project)
    assert code == 2
    assert body["status"] == "missing"
    assert body["pass"] is False
    assert body["reasons"] == ["staging has no snapshot", "production has no snapshot"]


def test_drift_at_fail_on_fails_and_waived_passes(project: Project) -> None:
    setup(project)
    assert project.invoke("scan", "--all").returncode == 0
    code, body = gate(project)
    assert (code, body["status"]) == (1, "fail")
    [failing] = body["failing"]
    assert (failing["path"], failing["left"], failing["right"]) == ("pool_size", 10, 20)
    assert body["summary"]["unwaived"] == 1
    project.invoke("waiver", "add", "--reason", "prod needs a bigger pool", "--path", "pool_size")
    code, body = gate(project)
    assert (code, body["status"], body["pass"]) == (0, "pass", True)


def test_drift_below_fail_on_passes(project: Project) -> None:
    setup(project, fail_on="critical")
    project.invoke("scan", "--all")
    code, body = gate(project)
    assert (code, body["status"]) == (0, "pass")
    assert body["summary"]["unwaived"] == 1  # still reported, only not blocking


def test_stale_data_fails_closed(project: Project) -> None:
    setup(project, max_age="30s")
    # Scanned by a host whose clock read 5 s ago: snapshots 5 s old, with no waiting.
    scan_on(FakeClock(start=utcnow() - timedelta(seconds=5)), project.config, *ENVIRONMENTS)
    old = json.loads(project.invoke("export", "production").stdout)
    old["taken_at"] = "2026-01-01T00:00:00Z"
    (project.root / "old.json").write_text(json.dumps(old))
    project.invoke("push", "production", str(project.root / "old.json"))
    # the pushed snapshot is older, so the latest is still the scan: fresh
    assert gate(project)[1]["status"] == "fail"
    setup(project, max_age="1s")
    code, body = gate(project)
    assert (code, body["status"]) == (2, "stale")
    assert "older than max_age 1s" in body["reasons"][0]


def test_partial_snapshot_missing_a_gated_category(project: Project) -> None:
    setup(project)
    project.invoke("scan", "--all")
    (project.root / "production.txt").unlink()
    assert project.invoke("scan", "production").returncode == 1
    code, body = gate(project)
    assert (code, body["status"]) == (2, "partial")
    assert "production: source pkgs failed" in body["reasons"][0]
    assert "packages" in body["reasons"][0]


def test_partial_snapshot_outside_gated_categories_is_judged(project: Project) -> None:
    setup(project, categories="[config]")
    project.invoke("scan", "--all")
    (project.root / "production.txt").unlink()
    project.invoke("scan", "production")
    code, body = gate(project)
    assert (code, body["status"]) == (1, "fail")  # config is known, and drifted


@pytest.mark.parametrize("fmt", ["table", "markdown", "junit"])
def test_other_formats(project: Project, fmt: str) -> None:
    setup(project)
    project.invoke("scan", "--all")
    result = project.invoke("gate", "staging", "production", "--format", fmt)
    assert result.returncode == 1
    assert "pool_size" in result.stdout


def test_cannot_evaluate_in_junit_is_an_error_case(project: Project) -> None:
    setup(project)
    result = project.invoke("gate", "staging", "production", "--format", "junit")
    assert result.returncode == 2
    assert 'errors="1"' in result.stdout
    assert "staging has no snapshot" in result.stdout


def test_junit_of_a_passing_gate_has_no_failing_case(project: Project) -> None:
    setup(project, fail_on="critical")
    project.invoke("scan", "--all")
    result = project.invoke("gate", "staging", "production", "--format", "junit")
    assert result.returncode == 0
    assert 'failures="0"' in result.stdout


def test_gate_category_narrows_what_is_judged(project: Project) -> None:
    setup(project)
    project.invoke("scan", "--all")
    code, body = gate(project, "--category", "packages")
    assert (code, body["status"]) == (0, "pass")
    bad = project.invoke("gate", "staging", "production", "--category", "pakages")
    assert bad.returncode == 2
    assert "'pakages' is not one of" in bad.stderr

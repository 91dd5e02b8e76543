"""`snapshots show`, `baseline show` and `baseline clear`: what a user reads to find an id for
`ENV@ID` and to see or undo the approved baseline."""

from __future__ import annotations

from tests.support import Project

CONFIG = """
environments:
  staging:
    sources:
      - {type: file, name: app-config, path: app.yaml}
      - {type: file, name: gone, path: missing.yaml}
"""


def _scanned(project: Project) -> Project:
    project.write_config(CONFIG)
    project.write("app.yaml", "replicas: 2\n")
    assert project.invoke("scan", "staging").returncode == 1  # partial: one source fails
    return project


def test_snapshots_show_gives_each_source_and_its_error(project: Project) -> None:
    _scanned(project)
    result = project.invoke("snapshots", "show", "1")
    assert result.returncode == 0, result.stderr
    assert "snapshot #1 of staging: partial, scan" in result.stdout
    assert "1 resources" in result.stdout
    assert "app-config" in result.stdout
    assert "file not found: missing.yaml" in result.stdout
    missing = project.invoke("snapshots", "show", "99")
    assert missing.returncode == 2
    assert "no snapshot #99" in missing.stderr


def test_baseline_show_and_clear(project: Project) -> None:
    _scanned(project)
    none = project.invoke("baseline", "show", "staging")
    assert none.returncode == 0
    assert "staging has no baseline" in none.stdout
    assert project.invoke("baseline", "set", "staging").returncode == 0
    shown = project.invoke("baseline", "show", "staging")
    assert shown.returncode == 0
    assert "staging: baseline is snapshot #1" in shown.stdout
    cleared = project.invoke("baseline", "clear", "staging")
    assert cleared.returncode == 0
    assert "baseline cleared (it was snapshot #1, which is kept)" in cleared.stdout
    assert "staging has no baseline" in project.invoke("baseline", "show", "staging").stdout
    assert "had no baseline" in project.invoke("baseline", "clear", "staging").stdout
    assert project.invoke("snapshots", "show", "1").returncode == 0  # the snapshot stays
    undeclared = project.invoke("baseline", "show", "prod")
    assert undeclared.returncode == 2
    assert "'prod' is not declared" in undeclared.stderr

"""The bundled examples, scanned: the reports tests' common ground."""

from __future__ import annotations

import shutil

import pytest

from tests.support import REPO, Project


@pytest.fixture
def examples(project: Project) -> Project:
    shutil.copytree(REPO / "examples", project.root, dirs_exist_ok=True)
    for leftover in project.root.glob("envparity.db*"):
        leftover.unlink()
    assert project.invoke("scan", "--all").returncode == 0
    return project

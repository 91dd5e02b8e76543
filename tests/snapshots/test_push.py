"""Push and export: exact round trips, and malformed documents refused whole."""

from __future__ import annotations

import json
from typing import Any

import pytest

from app import runtime
from app.db.models import Document, Snapshot, SnapshotSource
from tests.support import Project

CONFIG = """
environments:
  host-fleet: {}
  staging: {}
"""

PUSHED: dict[str, Any] = {
    "taken_at": "2026-11-22T04:00:00Z",
    "sources": [
        {"name": "host-agent", "type": "push", "status": "ok", "error": None},
        {"name": "dpkg", "type": "push", "status": "failed", "error": "dpkg-query not found"},
    ],
    "resources": [
        {
            "source": "host-agent",
            "category": "packages",
            "resource_type": "pip",
            "key": "requests",
            "attributes": {"version": "2.32.3"},
        },
        {
            "source": "host-agent",
            "category": "config",
            "resource_type": "file",
            "key": "/etc/app/app.yaml",
            "attributes": {"db": {"pool_size": 10, "hosts": ["a", "b"]}, "debug": False},
        },
    ],
}


def counts(project: Project) -> tuple[int, int, int]:
    rt = runtime.load(project.config)
    with rt.sessions.begin() as session:
        result = tuple(
            session.query(model).count() for model in (Snapshot, SnapshotSource, Document)
        )
    rt.close()
    return result  # type: ignore[return-value]


@pytest.fixture
def pushing(project: Project) -> Project:
    project.write_config(CONFIG)
    return project


def push(project: Project, document: Any, env: str = "host-fleet") -> Any:
    path = project.root / "push.json"
    path.write_text(json.dumps(document))
    return project.invoke("push", env, str(path))


def test_push_then_export_round_trips_exactly(pushing: Project) -> None:
    result = push(pushing, PUSHED)
    assert result.returncode == 0, result.stderr
    assert "stored snapshot #1 (partial)" in result.stdout
    exported = json.loads(pushing.invoke("export", "host-fleet").stdout)
    assert exported["environment"] == "host-fleet"
    assert exported["snapshot_id"] == 1
    assert exported["status"] == "partial"
    assert exported["taken_at"] == PUSHED["taken_at"]
    assert exported["sources"] == PUSHED["sources"]
    assert sorted(exported["resources"], key=lambda r: r["key"]) == sorted(
        PUSHED["resources"], key=lambda r: r["key"]
    )
    # and the export pushes back to the very same document
    assert push(pushing, exported).returncode == 0
    again = json.loads(pushing.invoke("export", "host-fleet", "2").stdout)
    assert {**again, "snapshot_id": 1} == exported


def test_export_of_a_given_snapshot_and_to_a_file(pushing: Project) -> None:
    push(pushing, PUSHED)
    push(pushing, {**PUSHED, "taken_at": "2026-11-22T05:00:00+01:00"})
    out = pushing.root / "out.json"
    assert pushing.invoke("export", "host-fleet", "1", "--output", str(out)).returncode == 0
    assert json.loads(out.read_text())["snapshot_id"] == 1
    latest = json.loads(pushing.invoke("export", "host-fleet").stdout)
    assert latest["taken_at"] == "2026-11-22T04:00:00Z"  # 05:00+01:00 in UTC
    wrong_env = pushing.invoke("export", "staging", "1")
    assert wrong_env.returncode == 2
    assert "does not belong" in wrong_env.stderr


@pytest.mark.parametrize(
    ("mutate", "path"),
    [
        pytest.param(
            lambda d: d["resources"][1].update(category="secrets"),
            "$.resources[1].category",
            id="bad-category",
        ),
        pytest.param(
            lambda d: d["resources"][0].pop("key"), "$.resources[0].key", id="missing-key"
        ),
        pytest.param(
            lambda d: d["resources"][0].update(source="nobody"),
            "$.resources[0].source",
            id="unknown-source",
        ),
        pytest.param(
            lambda d: d["resources"][1].update(source="dpkg"),
            "$.resources[1].source",
            id="failed-source",
        ),
        pytest.param(lambda d: d.update(taken_at="yesterday"), "$.taken_at", id="bad-time"),
        pytest.param(
            lambda d: d.update(taken_at="2026-11-22T04:00:00"), "$.taken_at", id="naive-time"
        ),
        pytest.param(
            lambda d: d["resources"].append(dict(d["resources"][0])),
            "$.resources[2]",
            id="duplicate",
        ),
        pytest.param(lambda d: d.update(extra=1), "$.extra", id="unknown-field"),
        pytest.param(
            lambda d: d["resources"][0].update(attributes=[1]),
            "$.resources[0].attributes",
            id="attributes-list",
        ),
    ],
)
def test_malformed_push_is_refused_whole(pushing: Project, mutate: Any, path: str) -> None:
    push(pushing, PUSHED)
    before = counts(pushing)
    document = json.loads(json.dumps(PUSHED))
    mutate(document)
    result = push(pushing, document)
    assert result.returncode == 2
    assert "nothing stored" in result.stderr
    assert path in result.stderr
    assert counts(pushing) == before


def test_push_that_is_not_json_says_where(pushing: Project) -> None:
    path = pushing.root / "broken.json"
    path.write_text('{"taken_at": "2026-11-22T04:00:00Z",\n "sources": [}')
    result = pushing.invoke("push", "host-fleet", str(path))
    assert result.returncode == 2
    assert "broken.json:2:" in result.stderr


def test_push_to_an_undeclared_environment_is_refused(pushing: Project) -> None:
    result = push(pushing, PUSHED, env="qa")
    assert result.returncode == 2
    assert "'qa' is not declared" in result.stderr


def test_pushed_secrets_are_hashed_before_storage(pushing: Project) -> None:
    document = json.loads(json.dumps(PUSHED))
    document["resources"][1]["attributes"]["db"]["password"] = "pushed-hunter2"
    document["resources"][1]["attributes"]["url"] = "postgres://app:pw-in-url-42@db:5432/x"
    assert push(pushing, document).returncode == 0
    exported = pushing.invoke("export", "host-fleet").stdout
    assert "pushed-hunter2" not in exported
    assert "pw-in-url-42" not in exported
    attributes = next(
        r["attributes"]
        for r in json.loads(exported)["resources"]
        if r["key"] == "/etc/app/app.yaml"
    )
    assert attributes["db"]["password"].startswith("secret:hmac-sha256:")
    assert attributes["url"].startswith("postgres://app:secret:hmac-sha256:")
    assert attributes["url"].endswith("@db:5432/x")

"""What the schemathesis run and the probes around it found, one case each, on SQLite and
PostgreSQL: input the database cannot hold is a 422 that says where, not a 500, nor a 503
that reads as an outage."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app import runtime
from app.auth.tokens import TokenRepository
from app.main import create_app
from tests.api.test_api import CONFIG, Api
from tests.support import Project


@pytest.fixture
def api(project: Project) -> Iterator[Api]:
    project.write_config(CONFIG)
    project.write("staging.yaml", "pool: 10\n")
    project.write("production.yaml", "pool: 20\n")
    rt = runtime.load(project.config)
    with rt.sessions.begin() as session:
        tokens = {"admin": TokenRepository(session).create("admin", "admin", None)[1]}
    with TestClient(create_app(runtime=rt)) as client:
        yield Api(client, tokens)
    rt.close()


@pytest.mark.parametrize(
    ("waiver", "path"),
    [
        ({"reason": "a\x00b"}, "$.reason"),
        ({"reason": "r", "key": "web-\x00"}, "$.key"),
        ({"reason": "r", "owner": "o" * 201}, "$.owner"),
        ({"reason": "r", "comparison": "c" * 211}, "$.comparison"),
        ({"reason": "r", "resource_type": "t" * 201}, "$.resource_type"),
        # UTC is a day before year 1
        ({"reason": "r", "expires": "0001-01-01T00:00:00+14:00"}, "$.expires"),
    ],
)
def test_a_waiver_the_database_cannot_hold_is_refused(
    api: Api, waiver: dict[str, Any], path: str
) -> None:
    refused = api.call("POST", "/waivers", json=waiver)
    assert refused.status_code == 422, refused.text
    assert [p["path"] for p in refused.json()["detail"]] == [path]
    assert api.call("GET", "/waivers").json() == []


def test_a_waiver_at_the_column_limits_is_stored(api: Api) -> None:
    waiver = {"reason": "r", "owner": "o" * 200, "comparison": "c" * 210, "key": "k" * 5000}
    stored = api.call("POST", "/waivers", json=waiver)
    assert stored.status_code == 201, stored.text
    assert stored.json()["owner"] == "o" * 200


def test_a_push_with_a_lone_surrogate_is_refused_whole(api: Api) -> None:
    body = (
        '{"taken_at": "2026-11-22T04:00:00Z", "sources": [{"name": "agent", "type": "push"}],'
        ' "resources": [{"source": "agent", "category": "config", "resource_type": "file",'
        ' "key": "app.yaml", "attributes": {"ok": "fine", "db": {"host": "x\\ud800"}}}]}'
    )
    refused = api.call("POST", "/environments/fleet/snapshots", content=body.encode())
    assert refused.status_code == 422, refused.text
    assert refused.json()["detail"][0]["path"] == "$.resources[0].attributes.db.host"
    assert "surrogate" in refused.json()["error"]
    assert api.call("GET", "/environments/fleet/snapshots").json() == []


@pytest.mark.parametrize(
    "ref", ["staging@0001-01-01T00:00:00+14:00", "staging@9999-12-31T23:59:59-14:00"]
)
def test_a_ref_time_outside_the_years_a_database_holds_is_a_422(api: Api, ref: str) -> None:
    answer = api.call("GET", "/diff", params={"left": ref, "right": "production"})
    assert answer.status_code == 422, answer.text
    assert "cannot hold" in answer.json()["error"]

"""Property-based API tests: schemathesis generates requests from the app's OpenAPI document and
sends them to the real app in process (ASGI), with an admin token, on a seeded SQLite database.
Every operation must answer without a server error (5xx), and every answer whose status the
document declares must match the schema declared for it.

SQLite only, on purpose: the generated cases are many and the database adds nothing to what is
checked here (tests/api/test_api.py covers the API on PostgreSQL as well)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.python.asgi import ASGIClient, get_client
from schemathesis.specs.openapi.checks import response_schema_conformance

from app import runtime
from app.auth.tokens import TokenRepository
from app.db.migrate import upgrade
from app.db.session import make_engine
from app.main import create_app
from tests.api.test_api import CONFIG, PUSH
from tests.conftest import TEST_SECRET_KEY

CHECKS = [not_a_server_error, response_schema_conformance]


@dataclass
class Seeded:
    """A client of the app (in process), an admin token and the ids the seeding created."""

    client: ASGIClient
    token: str
    scan_id: int
    snapshot_id: int

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    """One app for the module: scans and a push are too slow to repeat for every operation.
    Both environments scanned (they differ: a drift item), one pushed snapshot, one waiver."""
    root = tmp_path_factory.mktemp("schemathesis")
    (root / "envparity.yaml").write_text(CONFIG, encoding="utf-8")
    (root / "staging.yaml").write_text(
        "pool: 10\nhost: db-staging\napi_key: s3cr3t-staging\n", encoding="utf-8"
    )
    (root / "production.yaml").write_text(
        "pool: 20\nhost: db-production\napi_key: s3cr3t-production\n", encoding="utf-8"
    )
    url = f"sqlite:///{root / 'envparity.db'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    # A module fixture is set up before conftest's (function-scoped) isolation: do the same here.
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("ENVPARITY_"):
                mp.delenv(name)
        mp.setenv("ENVPARITY_SECRET_KEY", TEST_SECRET_KEY)
        mp.setenv("ENVPARITY_DATABASE_URL", url)
        rt = runtime.load(root / "envparity.yaml")
    with rt.sessions.begin() as session:
        token = TokenRepository(session).create("admin", "schemathesis", None)[1]
    auth = {"Authorization": f"Bearer {token}"}
    # schemathesis's own ASGI client (a requests.Session): it runs the app's lifespan; the
    # schemathesis pytest plugin ends that lifespan after each test and the client starts it
    # again with the next request.
    with get_client(create_app(runtime=rt)) as client:
        scan_ids = []
        for env in ("staging", "production"):
            scan = client.post(f"/api/v1/environments/{env}/scans?wait=true", headers=auth)
            assert scan.status_code == 200, scan.text
            assert scan.json()["status"] == "complete", scan.text
            scan_ids.append(scan.json()["id"])
        pushed = client.post("/api/v1/environments/fleet/snapshots", json=PUSH, headers=auth)
        assert pushed.status_code == 201, pushed.text
        waiver = {"reason": "staging runs a smaller pool", "path": "pool", "owner": "ops"}
        added = client.post("/api/v1/waivers", json=waiver, headers=auth)
        assert added.status_code == 201, added.text
        yield Seeded(client, token, scan_ids[0], pushed.json()["snapshot_id"])
    rt.close()


# Not `schemathesis.pytest.from_fixture`: under pytest 9 every test made with it fails
# (schemathesis 4.32 sets the private `Function._nodeid`, which pytest 9 no longer has). The
# schema is the app's own OpenAPI document, built at import: create_app() opens nothing (no
# config, no database) until its lifespan starts.
schema = schemathesis.openapi.from_dict(create_app().openapi())

# Known-good requests, so that every GET is checked on a 200 answer with data, not only on
# the 404s and 422s that generated names and ids mostly get.
GOOD: list[tuple[str, dict[str, Any]]] = [
    ("/api/v1/environments", {}),
    ("/api/v1/environments/{name}", {"path_parameters": {"name": "staging"}}),
    ("/api/v1/environments/{name}/snapshots", {"path_parameters": {"name": "fleet"}}),
    ("/api/v1/scans/{scan_id}", {"path_parameters": {"scan_id": "SCAN"}}),
    ("/api/v1/snapshots/{snapshot_id}", {"path_parameters": {"snapshot_id": "SNAPSHOT"}}),
    (
        "/api/v1/snapshots/{snapshot_id}/resources",
        {"path_parameters": {"snapshot_id": "SNAPSHOT"}, "query": {"category": "packages"}},
    ),
    ("/api/v1/diff", {"query": {"left": "staging", "right": "production"}}),
    ("/api/v1/comparisons", {}),
    (
        "/api/v1/comparisons/{source}/{target}/report",
        {"path_parameters": {"source": "staging", "target": "production"}},
    ),
    ("/api/v1/gate", {"query": {"source": "staging", "target": "production"}}),
    ("/api/v1/waivers", {}),
    ("/api/v1/healthz", {}),
    ("/api/v1/readyz", {}),
    ("/api/v1/metrics", {}),
]


@pytest.mark.parametrize(("path", "parts"), GOOD, ids=[path for path, _ in GOOD])
def test_get_with_data_conforms(path: str, parts: dict[str, Any], seeded: Seeded) -> None:
    ids = {"SCAN": seeded.scan_id, "SNAPSHOT": seeded.snapshot_id}
    path_parameters = {k: ids.get(v, v) for k, v in parts.get("path_parameters", {}).items()}
    case = schema[path]["GET"].Case(path_parameters=path_parameters, query=parts.get("query"))
    response = case.call_and_validate(
        session=seeded.client, base_url=seeded.client.base_url, headers=seeded.auth, checks=CHECKS
    )
    assert response.status_code == 200, response.text


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    # The app answers in process, but a few cases (a scan, a report) take longer than
    # hypothesis expects of a test body; and the data generated for some operations is large.
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
)
def test_generated_requests_conform(case: schemathesis.Case, seeded: Seeded) -> None:
    case.call_and_validate(
        session=seeded.client, base_url=seeded.client.base_url, headers=seeded.auth, checks=CHECKS
    )

"""Property-based API tests: schemathesis generates requests from the app's OpenAPI document and
sends them to the real app in process (ASGI), with an admin token, on a seeded database: SQLite,
and PostgreSQL (marked `postgres`; skipped when no server is reachable, a failure under
ENVPARITY_REQUIRE_POSTGRES=1).

Every check schemathesis has runs on every answer (`CHECKS`; a test holds the list to the
installed release's): no server error, the status code, content type, headers and body the
document declares, valid data accepted and invalid data refused, auth enforced, a deleted
resource gone, the 405s and their `Allow`. Then a stateful phase follows the document's links
(a waiver created, then deleted; a push, then its snapshot; a scan, then its result...).

The generation is derandomized (a fixed seed): the same cases every run, so a failure is
reproduced by running the test again."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import CHECKS as REGISTERED_CHECKS
from schemathesis.checks import load_all_checks, not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.python.asgi import get_client
from schemathesis.specs.openapi.checks import (
    allow_header_conformance,
    content_type_conformance,
    ensure_resource_availability,
    ignored_auth,
    missing_required_header,
    negative_data_rejection,
    object_level_authorization,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
    use_after_free,
)
from sqlalchemy import delete, func, insert, select
from starlette.types import Receive, Scope, Send

from app import runtime
from app.auth.tokens import TokenRepository
from app.db.models import Scan, WaiverRow
from app.main import create_app
from app.states import ScanStatus
from tests.api.test_api import CONFIG, PUSH
from tests.conftest import TEST_SECRET_KEY, fresh_database

# One seeded app per backend (scans, a push) and a minute of generated requests: all slow.
pytestmark = pytest.mark.slow

# Every check of the installed schemathesis (test_every_schemathesis_check_runs holds this list
# to its registry, so an upgrade that adds one fails until it is looked at here).
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    missing_required_header,
    unsupported_method,
    allow_header_conformance,
    use_after_free,
    ensure_resource_availability,
    ignored_auth,
    object_level_authorization,
]

SEED = 20261122

# `positive_data_acceptance` expects a 2xx (or 401, 403, 404, 409, 429) for every request the
# document allows. A few operations refuse some such requests by rules JSON Schema cannot
# state; for those operations (only) that refusal is an expected answer to schema-valid data.
ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "429"]
REFUSED_BY_RULES: dict[str, list[str]] = {
    # 422: a ref is ENV, ENV@baseline, ENV@ID or ENV@<ISO 8601 time>; which times parse is
    # what datetime.fromisoformat reads (no pattern says that, nor that 2026-02-30 is no date).
    "GET /api/v1/diff": ["422"],
    # 422: `expires` must be a time after now, and `reason` must not be blank.
    "POST /api/v1/waivers": ["422"],
    # 422: every resource names a source of the same document, `taken_at` lies between 1970
    # and now, and the limits (depth, lengths, counts) hold: rules across fields and the clock.
    # 400 here and below: an environment the config does not declare, named where a declared
    # one is needed ("not possible with this config", docs/api.md, Errors), or a scan of a
    # push-only one. The document cannot list the config's environments: a name is a string.
    "POST /api/v1/environments/{name}/snapshots": ["400", "422"],
    "POST /api/v1/environments/{name}/scans": ["400"],
    "GET /api/v1/comparisons/{source}/{target}/report": ["400"],
    "GET /api/v1/gate": ["400"],
}

# What schemathesis itself is told (the schemathesis.toml of this run, as a dict).
SCHEMATHESIS = SchemathesisConfig.from_dict(
    {
        "seed": SEED,
        "generation": {"deterministic": True},
        # The sequences follow the links with valid data: invalid data has the fuzzing (both
        # modes) and the coverage phase of test_generated_requests_conform.
        "phases": {"stateful": {"generation": {"mode": "positive"}}},
        "operations": [
            {
                # One filter (the operation's label): `include-path` with `include-method`
                # would match either.
                "include-name": label,
                "checks": {"positive_data_acceptance": {"expected-statuses": ACCEPTED + extra}},
            }
            for label, extra in REFUSED_BY_RULES.items()
        ],
    }
)


class AppUnderTest:
    """The ASGI app every case goes to: the seeded app of the backend being tested.

    One schema serves both backends, and schemathesis binds a schema's app when the tests are
    collected; this stands in for it and passes each request (and the lifespan, which the
    schemathesis pytest plugin ends after each test) to the current backend's app. The checks'
    own probes (the request without its token, with another method...) go the same way."""

    def __init__(self) -> None:
        self.app: FastAPI | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.app is not None, "no seeded app: use the `seeded` fixture"
        await self.app(scope, receive, send)


UNDER_TEST = AppUnderTest()


@dataclass
class Seeded:
    """The app (called in process), an admin token and the ids the seeding created."""

    app: FastAPI
    token: str
    scan_id: int
    snapshot_id: int

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def seeded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Seeded]:
    """One app for the module and backend: scans and a push are too slow to repeat for every
    operation. Both environments scanned (they differ: a drift item), one pushed snapshot,
    one waiver."""
    root = tmp_path_factory.mktemp(f"schemathesis-{request.param}")
    (root / "envparity.yaml").write_text(CONFIG, encoding="utf-8")
    (root / "staging.yaml").write_text(
        "pool: 10\nhost: db-staging\napi_key: s3cr3t-staging\n", encoding="utf-8"
    )
    (root / "production.yaml").write_text(
        "pool: 20\nhost: db-production\napi_key: s3cr3t-production\n", encoding="utf-8"
    )
    # A fresh migrated database: SQLite in `root`, or a clone of the PostgreSQL template
    # (tests/conftest.py), dropped when the generator is resumed.
    database = fresh_database(request, root, "envparity_st_")
    url = next(database)
    # A module fixture is set up before conftest's (function-scoped) isolation: do the same here.
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("ENVPARITY_"):
                mp.delenv(name)
        mp.setenv("ENVPARITY_SECRET_KEY", TEST_SECRET_KEY)
        mp.setenv("ENVPARITY_DATABASE_URL", url)
        rt = runtime.load(root / "envparity.yaml")
    try:
        with rt.sessions.begin() as session:
            token = TokenRepository(session).create("admin", "schemathesis", None)[1]
        auth = {"Authorization": f"Bearer {token}"}
        app = create_app(runtime=rt)
        UNDER_TEST.app = app
        # schemathesis's own ASGI client (a requests.Session): it runs the app's lifespan; the
        # schemathesis pytest plugin ends that lifespan after each test and the next request
        # starts it again.
        with get_client(UNDER_TEST) as client:
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
        AdminToken.token = token
        Sequences.rt = rt
        with rt.sessions() as session:
            Sequences.waivers = [
                {c.key: getattr(row, c.key) for c in WaiverRow.__table__.columns}
                for row in session.scalars(select(WaiverRow))
            ]
        yield Seeded(app, token, scan_ids[0], pushed.json()["snapshot_id"])
    finally:
        UNDER_TEST.app = None
        AdminToken.token = ""
        Sequences.rt = None
        rt.close()
        next(database, None)


# Not `schemathesis.pytest.from_fixture`: under pytest 9 every test made with it fails
# (schemathesis 4.32 sets the private `Function._nodeid`, which pytest 9 no longer has). The
# schema is the app's own OpenAPI document, built at import: create_app() opens nothing (no
# config, no database) until its lifespan starts.
schema = schemathesis.openapi.from_dict(create_app().openapi(), config=SCHEMATHESIS)
schema.app = UNDER_TEST


@schema.auth(refresh_interval=None)
class AdminToken:
    """The seeded admin token, set as the API expects it. Given through schemathesis's auth
    (not as a plain header), so that `ignored_auth` knows it is a real credential and checks
    that the same request without it, or with a wrong one, is refused."""

    token = ""

    def get(self, case: schemathesis.Case, context: Any) -> str:
        return self.token

    def set(self, case: schemathesis.Case, data: str, context: Any) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


def test_every_schemathesis_check_runs() -> None:
    load_all_checks()
    assert {c.__name__ for c in CHECKS} == set(REGISTERED_CHECKS.get_all_names())


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
    ("/api/v1/alerts", {}),
    ("/api/v1/healthz", {}),
    ("/api/v1/readyz", {}),
    ("/api/v1/metrics", {}),
]


@pytest.mark.parametrize(("path", "parts"), GOOD, ids=[path for path, _ in GOOD])
def test_get_with_data_conforms(path: str, parts: dict[str, Any], seeded: Seeded) -> None:
    ids = {"SCAN": seeded.scan_id, "SNAPSHOT": seeded.snapshot_id}
    path_parameters = {k: ids.get(v, v) for k, v in parts.get("path_parameters", {}).items()}
    case = schema[path]["GET"].Case(path_parameters=path_parameters, query=parts.get("query"))
    # A Case built by hand gets no auth from the provider: the header, given as the caller's.
    response = case.call_and_validate(headers=seeded.auth, checks=CHECKS)
    assert response.status_code == 200, response.text


# Per operation and backend: the examples, the coverage phase's boundary cases (valid and
# invalid), then fuzzing (both modes) up to max_examples. About 40 s for both backends.
@schema.parametrize()
@settings(
    max_examples=40,
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
    case.call_and_validate(checks=CHECKS)


class Sequences(schema.as_state_machine()):  # type: ignore[misc]
    """The document's state machine, made independent of timing. Hypothesis replays a prefix
    of calls and expects the same answers (which decide the links it may follow next), so no
    answer may depend on how fast a scan runs: after every call the app is left with no scan
    running (else a later sequence's scan of that environment finds it running: a 200 with no
    link, where it had a 202 with one), and a scan started with `wait=true` waits for as long
    as it takes (a generated `timeout` of a few milliseconds gives a 202 or a 200 by the
    clock). Short timeouts keep their coverage in test_generated_requests_conform."""

    rt: runtime.Runtime | None = None
    waivers: ClassVar[list[dict[str, Any]]] = []  # the seeded waivers' rows

    def setup(self) -> None:
        """Each sequence starts from the seeded waivers (the only rows the API deletes): the
        module's other tests, and the sequences before, create and delete waivers, and a
        `GET /waivers` that answers an empty list where it once answered one waiver decides
        another next call than it did (FlakyStrategyDefinition)."""
        super().setup()
        assert self.rt is not None, "no seeded app: use the `seeded` fixture"
        with self.rt.sessions.begin() as session:
            session.execute(delete(WaiverRow))
            session.execute(insert(WaiverRow), self.waivers)

    def before_call(self, case: schemathesis.Case) -> None:
        super().before_call(case)
        if case.operation.label == "POST /api/v1/environments/{name}/scans" and case.query:
            case.query = {k: v for k, v in case.query.items() if k != "timeout"}

    def after_call(self, response: Any, case: schemathesis.Case) -> None:
        super().after_call(response, case)
        assert self.rt is not None, "no seeded app: use the `seeded` fixture"
        deadline = time.monotonic() + 60
        while True:
            with self.rt.sessions() as session:
                running = session.scalar(
                    select(func.count()).select_from(Scan).where(Scan.status == ScanStatus.RUNNING)
                )
            if not running:
                return
            assert time.monotonic() < deadline, f"{running} scans still running after 60 s"
            time.sleep(0.02)


def test_stateful_sequences_conform(seeded: Seeded) -> None:
    """Sequences of calls along the document's links (and those schemathesis infers), every
    check on every answer: a waiver created then deleted (then gone: `use_after_free`), a
    push then its snapshot and resources, an environment then its scan and snapshots, a
    comparison then its report and gate. 80 sequences of up to 10 calls, about 15 s per
    backend."""
    Sequences.run(
        settings=settings(
            max_examples=80,
            stateful_step_count=10,
            deadline=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
    )

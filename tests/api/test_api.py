"""The HTTP API through the real app (in process), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from app.auth.tokens import SCOPES

# The API's test config, push and client live in tests/support.py (some modules import them
# from here).
from tests.support import API_CONFIG as CONFIG
from tests.support import PUSH, Api, Project, api_client


@pytest.fixture
def api(project: Project) -> Iterator[Api]:
    project.write_config(CONFIG)
    project.write("staging.yaml", "pool: 10\nhost: db-staging\n")
    project.write("production.yaml", "pool: 20\nhost: db-production\n")
    with api_client(project, SCOPES) as api:
        yield api


def scan_both(api: Api) -> None:
    for env in ("staging", "production"):
        answer = api.call("POST", f"/environments/{env}/scans?wait=true", "write")
        assert answer.status_code == 200, answer.text
        assert answer.json()["status"] == "complete"


def test_scan_then_report_and_gate(api: Api) -> None:
    scan_both(api)
    envs = api.call("GET", "/environments", "read").json()
    assert [e["name"] for e in envs] == ["staging", "production", "fleet"]
    assert envs[0]["latest_snapshot"]["status"] == "complete"
    report = api.call("GET", "/comparisons/staging/production/report", "read").json()
    assert [(i["path"], i["left"], i["right"]) for i in report["items"]] == [("pool", 10, 20)]
    gate = api.call("GET", "/gate?source=staging&target=production", "gate")
    assert gate.status_code == 200
    body = gate.json()
    assert (body["pass"], body["status"]) == (False, "fail")
    assert body["report_url"].endswith("/api/v1/comparisons/staging/production/report")
    waiver = api.call(
        "POST", "/waivers", "write", json={"reason": "prod pool is bigger", "path": "pool"}
    )
    assert waiver.status_code == 201
    assert (
        api.call("GET", "/gate?source=staging&target=production", "gate").json()["status"] == "pass"
    )
    assert api.call("DELETE", f"/waivers/{waiver.json()['id']}", "write").status_code == 204
    diff = api.call(
        "GET",
        "/diff?left=staging&right=production@" + str(envs[1]["latest_snapshot"]["id"]),
        "read",
    )
    assert diff.json()["summary"]["unwaived"] == 1


def test_gate_without_data_is_missing(api: Api) -> None:
    body = api.call("GET", "/gate?source=staging&target=production", "gate").json()
    assert (body["pass"], body["status"]) == (False, "missing")


def test_push_round_trip_and_refusals(api: Api) -> None:
    stored = api.call("POST", "/environments/fleet/snapshots", "write", json=PUSH)
    assert stored.status_code == 201, stored.text
    snapshot_id = stored.json()["snapshot_id"]
    resources = api.call(
        "GET", f"/snapshots/{snapshot_id}/resources?category=packages", "read"
    ).json()
    assert resources == [
        {"source": "agent", **{k: v for k, v in PUSH["resources"][0].items() if k != "source"}}
    ]
    bad = json.loads(json.dumps(PUSH))
    bad["resources"][0]["category"] = "secrets"
    refused = api.call("POST", "/environments/fleet/snapshots", "write", json=bad)
    assert refused.status_code == 422
    assert "$.resources[0].category" in refused.json()["error"]
    assert len(api.call("GET", "/environments/fleet/snapshots", "read").json()) == 1
    not_json = api.call("POST", "/environments/fleet/snapshots", "write", content=b"{nope")
    assert not_json.status_code == 422


def test_push_over_the_body_limit_is_413(api: Api, project: Project) -> None:
    big = b'{"pad": "' + b"x" * (51 * 1024 * 1024) + b'"}'
    answer = api.call("POST", "/environments/fleet/snapshots", "write", content=big)
    assert answer.status_code == 413


def test_health_and_readiness_need_no_token(api: Api) -> None:
    assert api.call("GET", "/healthz", None).json() == {"status": "ok"}
    ready = api.call("GET", "/readyz", None)
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"


def test_metrics_count_scans_gates_and_open_drift(api: Api) -> None:
    scan_both(api)
    api.call("GET", "/gate?source=staging&target=production", "gate")
    text = api.call("GET", "/metrics", "read").text
    assert (
        'envparity_scan_sources_total{environment="staging",outcome="ok",source_type="file"} 1.0'
        in text
    )
    assert (
        'envparity_gate_evaluations_total{comparison="staging->production",status="fail"} 1.0'
        in text
    )
    assert (
        'envparity_open_drift_items{comparison="staging->production",severity="warning"} 1.0'
        in text
    )
    assert 'envparity_scan_seconds_count{environment="production",status="complete"} 1.0' in text


def test_metrics_report_request_latency(api: Api) -> None:
    api.call("GET", "/environments", "read")
    text = api.call("GET", "/metrics", "read").text
    assert (
        'envparity_request_seconds_count{method="GET",route="/environments",status="200"}' in text
    )


def test_openapi_document_lists_every_endpoint(api: Api) -> None:
    paths = api.client.get("/openapi.json").json()["paths"]
    for path in (
        "/api/v1/gate",
        "/api/v1/diff",
        "/api/v1/environments/{name}/snapshots",
        "/api/v1/waivers",
    ):
        assert path in paths


# every endpoint, the scope it needs
ENDPOINTS = [
    ("GET", "/environments", "read"),
    ("GET", "/environments/staging", "read"),
    ("GET", "/environments/staging/snapshots", "read"),
    ("POST", "/environments/fleet/snapshots", "write"),
    ("POST", "/environments/staging/scans", "write"),
    ("GET", "/scans/1", "read"),
    ("GET", "/snapshots/1", "read"),
    ("GET", "/snapshots/1/resources", "read"),
    ("GET", "/diff?left=staging&right=production", "read"),
    ("GET", "/comparisons", "read"),
    ("GET", "/comparisons/staging/production/report", "read"),
    ("GET", "/gate?source=staging&target=production", "gate"),
    ("GET", "/waivers", "read"),
    ("POST", "/waivers", "write"),
    ("DELETE", "/waivers/1", "write"),
    ("GET", "/metrics", "read"),
]


@pytest.mark.parametrize(("method", "path", "needed"), ENDPOINTS)
def test_auth_matrix(api: Api, method: str, path: str, needed: str) -> None:
    body = PUSH if path.endswith("/snapshots") and method == "POST" else {"reason": "r"}
    kwargs = {"json": body} if method == "POST" else {}
    assert api.call(method, path, None, **kwargs).status_code == 401
    bad = api.client.request(
        method, "/api/v1" + path, headers={"Authorization": "Bearer envp_nope"}, **kwargs
    )
    assert bad.status_code == 401
    for scope in SCOPES:
        status = api.call(method, path, scope, **kwargs).status_code
        if SCOPES.index(scope) < SCOPES.index(needed):
            assert status == 403, (scope, status)
        else:
            assert status not in (401, 403), (scope, status)


def test_gate_answer_follows_a_replaced_waiver(api: Api) -> None:
    """SQLite reuses the highest id after a delete: the cached answer must still change."""
    scan_both(api)
    first = api.call(
        "POST", "/waivers", "write", json={"reason": "bigger pool", "path": "pool"}
    ).json()
    assert (
        api.call("GET", "/gate?source=staging&target=production", "gate").json()["status"] == "pass"
    )
    api.call("DELETE", f"/waivers/{first['id']}", "write")
    api.call("POST", "/waivers", "write", json={"reason": "unrelated", "path": "nothing.here"})
    assert (
        api.call("GET", "/gate?source=staging&target=production", "gate").json()["status"] == "fail"
    )

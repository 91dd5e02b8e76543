"""The dashboard's pages through the app in process: routing, login and cookies, filters,
404s, escaping, the report link, and the security headers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.auth.tokens import TokenRepository
from app.clock import utcnow
from app.deps import SESSION_COOKIE
from app.diff.model import DiffResult, DriftItem
from app.main import create_app
from app.reports.model import Report, SnapshotMeta
from app.web.templating import Pages
from app.web.views import Filters, grouped
from tests.web.seed import BANNER, Seeded, seeded


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    with seeded(tmp_path_factory.mktemp("dashboard")) as installation:
        yield installation


@pytest.fixture(scope="module")
def client(site: Seeded) -> Iterator[TestClient]:
    """Signed in with the read token."""
    with TestClient(create_app(runtime=site.runtime), follow_redirects=False) as c:
        c.cookies.set(SESSION_COOKIE, site.read_token)
        yield c


@pytest.fixture(scope="module")
def anonymous(site: Seeded) -> Iterator[TestClient]:
    with TestClient(create_app(runtime=site.runtime), follow_redirects=False) as c:
        yield c


def cell_classes(html: str, comparison: str) -> str:
    match = re.search(rf'<td class="([^"]+)" data-comparison="{re.escape(comparison)}"', html)
    assert match, f"no cell for {comparison}"
    return match[1]


# ----------------------------------------------------------------------------- pages


def test_overview_colours_each_comparison_by_its_worst_unwaived_severity(
    client: TestClient,
) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "sev-critical" in cell_classes(page.text, "staging->production")
    assert "sev-warning" in cell_classes(page.text, "dev->staging")
    assert 'href="/comparisons/staging/production"' in page.text
    assert '<strong class="gate gate-fail">fail</strong>' in page.text
    assert '<strong class="gate gate-stale">stale</strong>' in page.text  # dev is 3 h old
    for env in ("dev", "staging", "production"):
        assert f'<a href="/environments/{env}">{env}</a>' in page.text


def test_comparison_page_shows_items_side_by_side_and_the_documented_ones(
    client: TestClient,
) -> None:
    page = client.get("/comparisons/staging/production").text
    assert "ingress[tcp/22 from 0.0.0.0/0]" in page
    assert '<span class="badge sev-critical">critical</span>' in page
    assert "waived: production has more connections by design (ops)" in page
    assert "tolerated: patch on version" in page
    assert "<code>envparity gate staging production</code>" in page or (
        '<code id="gate-command">envparity gate staging production</code>' in page
    )
    assert "Showing 4 of 4 item(s)" in page
    assert re.search(
        r'<td class="value"><code>10</code></td>\s*<td class="value"><code>40</code>', page
    )


def test_values_are_escaped(client: TestClient) -> None:
    page = client.get("/comparisons/staging/production").text
    assert BANNER not in page
    assert "&lt;script&gt;alert(" in page
    assert "&lt;/script&gt;" in page
    snapshot = client.get("/snapshots/4?q=alert").text
    assert "<script>alert" not in snapshot
    assert "&lt;script&gt;alert" in snapshot


def test_every_field_of_an_item_is_escaped() -> None:
    """The item list is rendered by its own environment (escaping by `finalize`)."""
    hostile = '<img src=x onerror="alert(1)">'
    item = DriftItem(
        "config",
        hostile,
        hostile,
        hostile,
        "changed",
        {"k": hostile},
        hostile,
        severity="warning",
        waived=True,
        waiver={"reason": hostile, "owner": hostile, "expires": hostile},
        detail=hostile,
        fingerprint="f",
    )
    now = utcnow()
    side = SnapshotMeta("a", 1, now, "complete")
    report = Report(side, side, DiffResult("a->b", [item], [], 1, 1), now)
    html = str(Pages().fragment("comparison_items.html", **grouped(report, Filters())))
    assert "<img" not in html
    # type, key, path, detail, right, reason, owner, expires (twice); left is JSON
    assert html.count("&lt;img src=x onerror=&quot;alert(1)&quot;&gt;") == 9
    assert "{&quot;k&quot;: &quot;&lt;img" in html


@pytest.mark.parametrize(
    ("query", "present", "absent"),
    [
        ("category=network", ["cat-network"], ["cat-config", "cat-packages"]),
        ("severity=critical", ["0.0.0.0/0"], ["banner", "pool_size"]),
        ("waived=hide", ["banner", "0.0.0.0/0"], ["pool_size", "requests"]),
        ("waived=only", ["pool_size", "requests"], ["banner", "0.0.0.0/0"]),
        ("category=config&waived=hide", ["banner"], ["pool_size", "0.0.0.0/0"]),
    ],
)
def test_filters_are_query_parameters(
    client: TestClient, query: str, present: list[str], absent: list[str]
) -> None:
    page = client.get(f"/comparisons/staging/production?{query}").text
    main = page[page.index('<h2 id="items-title">') :]
    for text in present:
        assert text in main, text
    for text in absent:
        assert text not in main, text
    assert "Clear</a>" in main


def test_filter_form_keeps_the_chosen_values(client: TestClient) -> None:
    page = client.get("/comparisons/staging/production?category=network&severity=critical").text
    assert '<option value="network" selected>' in page
    assert '<option value="critical" selected>' in page


def drift_cells(page: str) -> list[list[str]]:
    """The drift column of the timeline's table, newest first, as text."""
    table = page[page.index('id="scans-title"') : page.index('id="sources-title"')]
    rows = re.findall(r"<tr>(.*?)</tr>", table, re.S)[1:]
    return [
        re.sub(r"<[^>]+>|\s+", " ", re.findall(r"<td>(.*?)</td>", r, re.S)[-2]).split()
        for r in rows
    ]


def test_environment_page_has_a_timeline_with_drift_counts(client: TestClient) -> None:
    page = client.get("/environments/production").text
    assert '<svg viewBox="0 0 720 220" role="img"' in page
    assert page.count('<g class="bar">') == 2
    assert '<rect class="fill-critical"' in page
    # from the evaluations stored after each push: what each snapshot opened
    assert drift_cells(page) == [
        ["1", "critical", "1", "warning", "(1", "new,", "0", "resolved)"],
        ["no", "unwaived", "drift"],  # before SSH was opened; pool_size is waived
    ]
    assert '<th scope="row">aws</th>' in page
    staging = client.get("/environments/staging").text
    assert "Drift dev → staging" in staging
    assert "Drift staging → production" in staging


def test_timeline_without_stored_evaluations_is_computed(tmp_path: Path) -> None:
    with (
        seeded(tmp_path, auth=False, evaluate=False) as bare,
        TestClient(create_app(runtime=bare.runtime)) as c,
    ):
        page = c.get("/environments/production").text
    assert drift_cells(page) == [
        ["1", "critical", "1", "warning"],
        ["no", "unwaived", "drift"],
    ]


def test_snapshot_browser_searches(client: TestClient) -> None:
    everything = client.get("/snapshots/5").text
    assert "3 of 3 resource(s)" in everything
    found = client.get("/snapshots/5?q=0.0.0.0/0").text
    assert "1 of 3 resource(s) match" in found
    assert "web-{env}" not in found  # keys are stored raw; normalization is for comparing
    assert "web-production" in found
    assert "deploy/production/app.yaml" not in found
    by_category = client.get("/snapshots/5?category=packages").text
    assert "requests" in by_category
    assert "web-production" not in by_category


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/environments/qa", 404),
        ("/comparisons/staging/qa", 404),
        ("/snapshots/999", 404),
        ("/snapshots/0", 422),
        ("/comparisons/staging/production?category=secrets", 422),
        ("/comparisons/staging/production?waived=maybe", 422),
    ],
)
def test_errors_are_html_pages(client: TestClient, path: str, status: int) -> None:
    page = client.get(path)
    assert page.status_code == status
    assert page.headers["content-type"].startswith("text/html")
    assert "Back to the overview" in page.text


def test_an_undeclared_pair_is_judged_with_the_gate_defaults(client: TestClient) -> None:
    page = client.get("/comparisons/production/dev").text
    assert "not a declared comparison" in page


def test_pages_carry_security_headers_and_versioned_assets(client: TestClient) -> None:
    page = client.get("/")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
    css = re.search(r'href="(/static/dashboard\.css\?v=[0-9a-f]+)"', page.text)
    assert css
    asset = client.get(css[1])
    assert asset.status_code == 200
    assert asset.headers["content-type"].startswith("text/css")
    assert "style=" not in page.text  # the CSP allows no inline style


# ----------------------------------------------------------------------------- login


def test_pages_need_a_session(anonymous: TestClient) -> None:
    for path in ("/", "/comparisons/staging/production?category=network", "/snapshots/1"):
        answer = anonymous.get(path)
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/login?next=")
    login = anonymous.get("/login?next=/environments/dev")
    assert login.status_code == 200
    assert '<label for="token">API token</label>' in login.text
    assert 'value="/environments/dev"' in login.text
    # a link followed from another site carries no SameSite=Strict cookie: reload first
    hop = anonymous.get(
        "/comparisons/staging/production?category=network",
        headers={"Sec-Fetch-Site": "cross-site"},
    )
    assert hop.status_code == 200
    assert (
        '<meta http-equiv="refresh" content="0; url=/comparisons/staging/production'
        '?category=network">' in hop.text
    )
    # the assets and the probes stay open
    assert anonymous.get("/api/v1/healthz").status_code == 200


def test_login_sets_an_httponly_strict_cookie(site: Seeded) -> None:
    with TestClient(create_app(runtime=site.runtime), follow_redirects=False) as c:
        wrong = c.post("/login", data={"token": "envp_wrong", "next": "/"})
        assert wrong.status_code == 401
        assert "unknown, revoked or expired" in wrong.text
        assert "set-cookie" not in wrong.headers
        right = c.post("/login", data={"token": site.read_token, "next": "/environments/dev"})
        assert right.status_code == 303
        assert right.headers["location"] == "/environments/dev"
        cookie = right.headers["set-cookie"]
        assert cookie.startswith(f"{SESSION_COOKIE}={site.read_token};")
        assert "HttpOnly" in cookie
        assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie
        assert "Path=/" in cookie
        assert c.get("/environments/dev").status_code == 200
        assert c.get("/login?next=/snapshots/1").headers["location"] == "/snapshots/1"
        out = c.post("/logout")
        assert out.status_code == 303
        assert c.get("/").status_code == 303


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "\\\\evil"])
def test_login_never_redirects_off_site(site: Seeded, anonymous: TestClient, target: str) -> None:
    answer = anonymous.post("/login", data={"token": site.read_token, "next": target})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/"


def test_a_revoked_token_sends_back_to_login(site: Seeded) -> None:
    with site.runtime.sessions.begin() as session:
        repo = TokenRepository(session)
        row, token = repo.create("read", "short-lived", None)
        repo.revoke(row.id)
    with TestClient(create_app(runtime=site.runtime), follow_redirects=False) as c:
        c.cookies.set(SESSION_COOKIE, token)
        assert c.get("/").status_code == 303
        assert c.post("/login", data={"token": token}).status_code == 401


def test_auth_off_opens_the_pages(tmp_path: Path) -> None:
    with (
        seeded(tmp_path, auth=False) as open_site,
        TestClient(create_app(runtime=open_site.runtime), follow_redirects=False) as c,
    ):
        page = c.get("/")
        assert page.status_code == 200
        assert "Sign out" not in page.text
        assert "auth is off" in page.text
        assert c.get("/login?next=/environments/dev").headers["location"] == "/environments/dev"


# ----------------------------------------------------------------------------- report link


def test_the_gates_report_url_lands_on_the_comparison_page(
    site: Seeded, client: TestClient
) -> None:
    client.get("/")  # the dashboard fills the gate's cache: the link must survive that
    with site.runtime.sessions.begin() as session:
        _, gate_token = TokenRepository(session).create("gate", "ci", None)
    answer = client.get(
        "/api/v1/gate?source=staging&target=production",
        headers={"Authorization": f"Bearer {gate_token}"},
    ).json()
    url = answer["report_url"]
    assert url == "/api/v1/comparisons/staging/production/report"
    browser = client.get(url, headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert browser.status_code == 303
    assert browser.headers["location"] == "/comparisons/staging/production"
    api = client.get(
        url, headers={"Accept": "application/json", "Authorization": f"Bearer {gate_token}"}
    )
    assert api.status_code == 200
    assert api.json()["comparison"] == "staging->production"
    assert client.get(url).status_code == 401  # no Accept: an API client, without its token


def test_a_stale_comparison_shows_the_stored_report(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def computed(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the report was computed, not read from the stored evaluation")

    monkeypatch.setattr("app.web.service.compare_refs", computed)
    page = client.get("/comparisons/dev/staging").text
    assert '<span class="gate gate-stale">stale</span>' in page
    assert "&lt;script&gt;alert(" in page  # the banner drift, from the stored report

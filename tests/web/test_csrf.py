"""Login CSRF: another site's page cannot sign a visitor in (with the attacker's token) or
out. Browsers say where a request comes from (Sec-Fetch-Site, Origin); the server's own
pages and clients that are not browsers (no such headers) keep working."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app import runtime
from app.auth.tokens import TokenRepository
from app.deps import SESSION_COOKIE
from app.main import create_app
from tests.web.seed import Seeded, seeded

# TestClient's requests go to http://testserver
SAME_ORIGIN = [
    {},  # curl, a script: no browser headers
    {"Origin": "http://testserver"},
    {"Sec-Fetch-Site": "same-origin", "Origin": "http://testserver"},
    {"Sec-Fetch-Site": "same-origin"},
    {"Sec-Fetch-Site": "none"},  # typed or bookmarked
]
CROSS_SITE = [
    {"Origin": "https://evil.example"},
    {"Origin": "http://testserver.evil.example"},
    {"Origin": "null"},  # a sandboxed frame, a data: URL
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
    {"Sec-Fetch-Site": "same-site", "Origin": "http://other.testserver"},  # a sibling host
]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    with seeded(tmp_path_factory.mktemp("csrf")) as installation:
        yield installation


@pytest.fixture
def browser(site: Seeded) -> Iterator[TestClient]:
    with TestClient(create_app(runtime=site.runtime), follow_redirects=False) as c:
        yield c


@pytest.mark.parametrize("headers", CROSS_SITE)
def test_a_cross_site_sign_in_is_refused(
    site: Seeded, browser: TestClient, headers: dict[str, str]
) -> None:
    answer = browser.post("/login", data={"token": site.read_token}, headers=headers)
    assert answer.status_code == 403
    assert "set-cookie" not in answer.headers
    assert answer.headers["content-type"].startswith("text/html")
    assert "another site" in answer.text


@pytest.mark.parametrize("headers", SAME_ORIGIN)
def test_a_same_origin_sign_in_works(
    site: Seeded, browser: TestClient, headers: dict[str, str]
) -> None:
    answer = browser.post(
        "/login", data={"token": site.read_token, "next": "/environments/dev"}, headers=headers
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/environments/dev"
    assert answer.headers["set-cookie"].startswith(f"{SESSION_COOKIE}={site.read_token};")


@pytest.mark.parametrize("headers", CROSS_SITE)
def test_a_cross_site_sign_out_is_refused(
    site: Seeded, browser: TestClient, headers: dict[str, str]
) -> None:
    browser.cookies.set(SESSION_COOKIE, site.read_token)
    answer = browser.post("/logout", headers=headers)
    assert answer.status_code == 403
    assert "set-cookie" not in answer.headers  # the cookie is not deleted
    assert browser.get("/").status_code == 200  # still signed in


@pytest.mark.parametrize("headers", SAME_ORIGIN)
def test_a_same_origin_sign_out_works(
    site: Seeded, browser: TestClient, headers: dict[str, str]
) -> None:
    browser.cookies.set(SESSION_COOKIE, site.read_token)
    answer = browser.post("/logout", headers=headers)
    assert answer.status_code == 303
    assert f'{SESSION_COOKIE}=""' in answer.headers["set-cookie"]


def test_a_wrong_token_from_another_site_is_refused_before_it_is_checked(
    browser: TestClient,
) -> None:
    answer = browser.post(
        "/login", data={"token": "envp_wrong"}, headers={"Origin": "https://evil.example"}
    )
    assert answer.status_code == 403


def test_public_url_is_this_server_behind_a_proxy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A proxy may pass its own Host; the browser's Origin is then server.public_url."""
    monkeypatch.setenv("ENVPARITY_DATABASE_URL", f"sqlite:///{tmp_path / 'envparity.db'}")
    (tmp_path / "envparity.yaml").write_text(
        "server: {public_url: 'https://envparity.example'}\nenvironments:\n  dev: {}\n"
    )
    rt = runtime.load(tmp_path / "envparity.yaml")
    with rt.sessions.begin() as session:
        token = TokenRepository(session).create("read", "dashboard", None)[1]
    with TestClient(create_app(runtime=rt), follow_redirects=False) as c:
        ok = c.post(
            "/login", data={"token": token}, headers={"Origin": "https://envparity.example"}
        )
        assert ok.status_code == 303
        assert "Secure" in ok.headers["set-cookie"]
        other = c.post("/login", data={"token": token}, headers={"Origin": "https://evil.example"})
        assert other.status_code == 403
    rt.close()


def test_a_sign_in_form_larger_than_4_kb_is_refused(site: Seeded, browser: TestClient) -> None:
    answer = browser.post("/login", data={"token": site.read_token, "next": "/" + "x" * 5000})
    assert answer.status_code == 413
    assert "set-cookie" not in answer.headers

"""The API reference pages (/docs: Swagger UI, /redoc: ReDoc) on a closed network: headless
Chromium (Debian's /usr/bin/chromium, driven by Playwright) against the real `envparity serve`
command, with every request that would leave this machine aborted and recorded. The pages must
render from the server's own assets and ask for nothing else."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.support import BROWSER_ARGS, CHROMIUM, envparity_serve, require_browser
from tests.web.seed import seeded

# A name for this server as people reach it (not an address that reads as loopback, which is
# all Swagger UI needs to ask a third-party validator about the document): Chromium resolves
# it to loopback itself, so no lookup and no connection leaves the machine.
SERVER_NAME = "envparity.test"
ARGS = [*BROWSER_ARGS, f"--host-resolver-rules=MAP {SERVER_NAME} 127.0.0.1"]
LOCAL_HOSTS = {"127.0.0.1", "localhost", SERVER_NAME}
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"


require_browser()

from playwright import sync_api  # noqa: E402 (only once the browser is known to be there)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, str]]:
    """The real `envparity serve` (auth on) on a free loopback port, and a `read` token."""
    with (
        seeded(tmp_path_factory.mktemp("docs")) as installation,
        envparity_serve(installation.root) as served,
    ):
        port = urlsplit(served.url).port
        assert port is not None
        yield port, installation.read_token


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


class Offline:
    """A tab on a closed network: a request to any host but this server is aborted, and kept."""

    def __init__(self, browser: Any, base_url: str) -> None:
        self.context = browser.new_context(
            base_url=base_url, viewport={"width": 1280, "height": 900}
        )
        self.context.set_default_timeout(15_000)
        self.left: list[str] = []
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()

    def _route(self, route: Any) -> None:
        url = route.request.url
        if urlsplit(url).hostname in LOCAL_HOSTS or url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            self.left.append(url)
            route.abort("internetdisconnected")


@pytest.fixture(params=["127.0.0.1", SERVER_NAME])
def offline(
    request: pytest.FixtureRequest, browser: Any, site: tuple[int, str]
) -> Iterator[Offline]:
    """By loopback address, and by name (as a browser elsewhere on the network reaches it)."""
    tab = Offline(browser, f"http://{request.param}:{site[0]}")
    yield tab
    tab.context.close()


def shown(tab: Offline, locator: Any) -> None:
    """Waits for the locator to be visible; if it never is, says what the page asked of the
    outside world (a page that needs a CDN stays blank here)."""
    try:
        locator.wait_for(state="visible")
    except sync_api.TimeoutError:
        pytest.fail(f"not rendered; requests that left this machine: {tab.left}")


def shot(tab: Offline, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    tab.page.screenshot(path=str(ARTIFACTS / f"api-{name}.png"), full_page=False)


def test_swagger_ui_renders_the_operations_from_the_servers_own_assets(
    offline: Offline, site: tuple[int, str]
) -> None:
    page = offline.page
    answer = page.goto("/docs", wait_until="networkidle")
    assert answer is not None
    assert answer.status == 200  # no token needed
    gate = page.locator(".opblock-summary-path[data-path='/api/v1/gate']")
    shown(offline, gate)
    assert gate.count() == 1
    assert page.locator(".info .title").inner_text().startswith("envparity")
    shot(offline, "docs")
    # Usable, not only shown: Authorize with a token, then try a request from the page.
    page.click("button.authorize")
    page.fill(".modal-ux input", site[1])
    page.click(".modal-ux button.authorize")
    page.click(".modal-ux button.btn-done")
    operation = page.locator(".opblock", has=page.locator("[data-path='/api/v1/environments']"))
    operation.locator(".opblock-summary-control").click()
    operation.locator("button.try-out__btn").click()
    operation.locator("button.execute").click()
    status = operation.locator(".live-responses-table tr.response .response-col_status")
    status.wait_for(state="visible")
    assert status.inner_text().strip() == "200"
    assert "staging" in operation.locator(".live-responses-table .highlight-code").inner_text()
    page.wait_for_load_state("networkidle")
    assert offline.left == []


def test_redoc_renders_the_reference_from_the_servers_own_assets(offline: Offline) -> None:
    page = offline.page
    answer = page.goto("/redoc", wait_until="networkidle")
    assert answer is not None
    assert answer.status == 200
    shown(offline, page.locator("h1", has_text="envparity").first)
    assert page.get_by_text("/api/v1/gate").count() >= 1
    page.wait_for_load_state("networkidle")
    shot(offline, "redoc")
    assert offline.left == []

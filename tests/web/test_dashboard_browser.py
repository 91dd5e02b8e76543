"""The dashboard in headless Chromium (Debian's /usr/bin/chromium, driven by Playwright)
against the real `envparity serve` command on loopback, with a seeded database. Screenshots of every
page go to tests/artifacts/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import BROWSER_ARGS, CHROMIUM, envparity_serve, require_browser
from tests.web.seed import Seeded, seeded

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
CRITICAL_BACKGROUND = "rgb(179, 38, 30)"  # --critical-bg, #b3261e, in dashboard.css


require_browser()

from playwright import sync_api  # noqa: E402 (only once the browser is known to be there)

# A browser and `envparity serve` serve the module: all of it is slow.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Seeded, str]]:
    """The real `envparity serve` command on a free loopback port, on the seeded database."""
    with (
        seeded(tmp_path_factory.mktemp("browser")) as installation,
        envparity_serve(installation.root) as served,
    ):
        yield installation, served.url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def page(browser: Any, site: tuple[Seeded, str]) -> Iterator[Any]:
    """A signed-in tab (the login itself is tested below, in its own context)."""
    installation, url = site
    context = browser.new_context(base_url=url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    tab = context.new_page()
    tab.goto("/login")
    tab.fill("#token", installation.read_token)
    tab.click("button[type=submit]")
    tab.wait_for_url(url + "/")
    dialogs: list[str] = []
    tab.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    yield tab
    assert dialogs == []  # no script from the data ever ran
    context.close()


def shot(tab: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    tab.screenshot(path=str(ARTIFACTS / f"dashboard-{name}.png"), full_page=True)


def luminance(rgb: str) -> float:
    channels = [int(v) / 255 for v in rgb[rgb.index("(") + 1 : rgb.index(")")].split(",")[:3]]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_login_refuses_a_wrong_token_and_sets_a_strict_httponly_cookie(
    browser: Any, site: tuple[Seeded, str]
) -> None:
    installation, url = site
    context = browser.new_context(base_url=url)
    context.set_default_timeout(10_000)
    tab = context.new_page()
    tab.goto("/comparisons/staging/production")
    assert "/login?next=" in tab.url
    shot(tab, "login")
    tab.fill("#token", "envp_not-a-token")
    tab.click("button[type=submit]")
    assert tab.locator("[role=alert]").inner_text() == "That token is unknown, revoked or expired."
    assert context.cookies() == []
    tab.fill("#token", installation.read_token)
    tab.click("button[type=submit]")
    tab.wait_for_url(url + "/comparisons/staging/production")
    (cookie,) = context.cookies()
    assert cookie["name"] == "envparity_token"
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert tab.evaluate("document.cookie") == ""  # out of reach of scripts
    tab.click("text=Sign out")
    tab.wait_for_url(url + "/login")
    assert context.cookies() == []
    context.close()


def test_overview_shows_the_failing_comparison_in_the_critical_colour(page: Any) -> None:
    page.goto("/")
    cell = page.locator('td[data-comparison="staging->production"]')
    assert "sev-critical" in (cell.get_attribute("class") or "")
    background = cell.evaluate("e => getComputedStyle(e).backgroundColor")
    colour = cell.evaluate("e => getComputedStyle(e).color")
    assert background == CRITICAL_BACKGROUND
    assert contrast(colour, background) >= 4.5  # WCAG AA
    assert "gate: FAIL" in cell.inner_text()  # uppercase by CSS
    warning = page.locator('td[data-comparison="dev->staging"]')
    assert (
        contrast(
            warning.evaluate("e => getComputedStyle(e).color"),
            warning.evaluate("e => getComputedStyle(e).backgroundColor"),
        )
        >= 4.5
    )
    shot(page, "overview")


def test_overview_is_usable_on_a_phone(browser: Any, page: Any) -> None:
    page.set_viewport_size({"width": 375, "height": 800})
    try:
        page.goto("/")
        # wide tables scroll in their own box; the page itself never scrolls sideways
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        # the matrix turns into one card per comparison, inside the screen's width
        card = page.locator('td[data-comparison="staging->production"]').bounding_box()
        assert card is not None
        assert card["x"] >= 0
        assert card["x"] + card["width"] <= 375
        shot(page, "overview-phone")
    finally:
        page.set_viewport_size({"width": 1280, "height": 900})


def test_clicking_the_cell_reaches_its_items_and_the_category_filter_works(page: Any) -> None:
    page.goto("/")
    page.click('td[data-comparison="staging->production"] a')
    page.wait_for_url("**/comparisons/staging/production")
    row = page.locator("tr", has_text="ingress[tcp/22 from 0.0.0.0/0]")
    assert row.count() == 1
    assert "critical" in row.inner_text()
    assert page.locator("#cat-config").count() == 1
    shot(page, "comparison")
    page.select_option("#f-category", "network")
    page.click("text=Apply filters")
    page.wait_for_url("**/comparisons/staging/production?category=network&severity=&waived=")
    assert page.locator("#cat-network").count() == 1
    assert page.locator("#cat-config").count() == 0
    assert page.locator("#cat-packages").count() == 0
    assert "Showing 1 of 4" in page.inner_text("main")
    page.click("text=Clear")
    assert page.locator("#cat-config").count() == 1


def test_keyboard_reaches_the_links(page: Any) -> None:
    page.goto("/")
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.textContent.trim()")
    assert focused == "Skip to content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    seen = []
    for _ in range(20):
        page.keyboard.press("Tab")
        seen.append(page.evaluate("document.activeElement.getAttribute('href')"))
        if seen[-1] == "/comparisons/staging/production":
            break
    assert seen[-1] == "/comparisons/staging/production", seen
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"  # a visible focus ring
    page.keyboard.press("Enter")
    page.wait_for_url("**/comparisons/staging/production")


def test_environment_timeline_and_snapshot_browser(page: Any) -> None:
    page.goto("/environments/production")
    chart = page.locator("figure.chart svg")
    assert chart.get_attribute("role") == "img"
    assert page.locator("figure.chart rect.fill-critical").count() == 1
    shot(page, "environment")
    page.click("a[href='/snapshots/5'] >> nth=0")
    page.wait_for_url("**/snapshots/5")
    page.fill("#f-q", "0.0.0.0/0")
    page.keyboard.press("Enter")
    page.wait_for_url("**/snapshots/5?q=0.0.0.0%2F0*")
    assert "1 of 3 resource(s) match" in page.inner_text("main")
    assert page.locator("table.resources tbody tr").count() == 1
    shot(page, "snapshot")


def test_a_report_link_followed_from_another_site_opens_the_page(
    page: Any, site: tuple[Seeded, str]
) -> None:
    """Slack or a CI log is another site: the SameSite=Strict cookie is not sent with that
    first request, and the page must still open for someone signed in."""
    _, url = site
    elsewhere = url.replace("127.0.0.1", "localhost")  # another site, same server
    page.goto(elsewhere + "/login")
    page.evaluate(
        """href => {
            const a = document.createElement("a");
            a.href = href; a.id = "report-link"; a.textContent = "report";
            document.body.append(a);
        }""",
        url + "/api/v1/comparisons/staging/production/report",  # the gate's report_url
    )
    page.click("#report-link")
    page.wait_for_url(url + "/comparisons/staging/production")
    assert page.locator("h1").inner_text() == "staging → production"

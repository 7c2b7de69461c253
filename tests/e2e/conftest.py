"""End-to-end fixtures: Playwright's sync API driving a real Chromium against `live_server`.

Tests here use `@pytest.mark.django_db(transaction=True)`: the live server answers from its own
thread and database connection, so it only sees rows the test has committed.
"""

from __future__ import annotations

import itertools
import os
import re
import warnings
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, expect, sync_playwright

REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT_DIR = REPO_ROOT / "test-artifacts" / "screenshots"
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost"})
TIMEOUT_MS = 10_000

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="package")
def e2e_playwright():
    """The one Playwright (sync API) of the e2e tests; `browser` and the fake camera's browsers
    (tests/e2e/fake_camera.py) are launched from it.

    Package scope, not session scope: while Playwright's sync API is started, its asyncio loop
    counts as running in the main thread, and that breaks tests outside this folder that run in
    the same session (`async_to_sync` refuses to run in a thread with a running loop). Stopping
    Playwright after the last e2e test gives the thread back.

    DJANGO_ALLOW_ASYNC_UNSAFE: Django refuses ORM calls from a thread with a running event loop
    (SynchronousOnlyOperation), assuming they come from async code. Here the ORM calls are the
    test's own setup and assertions (and pytest-django's flush), made synchronously in the test
    thread between Playwright calls, never from a coroutine inside Playwright's loop; the live
    server answers from its own thread. So the check protects nothing here and is switched off,
    only while Playwright runs.
    """
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    expect.set_options(timeout=TIMEOUT_MS)
    try:
        with sync_playwright() as playwright:
            yield playwright
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture(scope="package")
def browser(e2e_playwright):
    """One Chromium for the e2e tests."""
    chromium = e2e_playwright.chromium.launch(
        executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
    )
    yield chromium
    chromium.close()


@pytest.fixture
def camera_browser_for(e2e_playwright, tmp_path):
    """A factory: `camera_browser_for("CT000077", "code128")` (or `"qr"`) returns a Chromium
    whose fake camera films that barcode (tests/e2e/fake_camera.py says which ZXing settings
    read it). Every browser it made is closed after the test."""
    # Imported here: fake_camera reads CHROMIUM_ARGS from this module.
    from tests.e2e.fake_camera import barcode_image, camera_browser, write_y4m

    numbers = itertools.count(1)
    with ExitStack() as cleanup:

        def make(text: str, symbology: str = "code128"):
            image = barcode_image(text, symbology=symbology)
            video = write_y4m(tmp_path / f"camera-{next(numbers)}.y4m", image)
            chromium = camera_browser(e2e_playwright, video)
            cleanup.callback(chromium.close)
            return chromium

        yield make


@pytest.fixture
def blocked_requests() -> list[str]:
    """URLs of every request the page tried to send off this machine (aborted)."""
    return []


@pytest.fixture
def context(browser, blocked_requests):
    """A fresh browser context (cookies, storage) per test; no request leaves the machine."""
    browser_context = browser.new_context(viewport={"width": 1280, "height": 900})
    browser_context.set_default_timeout(TIMEOUT_MS)
    browser_context.set_default_navigation_timeout(TIMEOUT_MS)

    def only_local(route, request):
        if urlsplit(request.url).hostname in LOCAL_HOSTS:
            route.continue_()
        else:
            blocked_requests.append(request.url)
            route.abort()

    browser_context.route("**/*", only_local)
    yield browser_context
    browser_context.close()


@pytest.fixture
def page(request, context) -> Page:
    """A page per test; its screenshot lands in test-artifacts/screenshots/<test name>.png
    whether the test passed or failed."""
    browser_page = context.new_page()
    # Every page of the site runs under a Content-Security-Policy (docs/SECURITY.md): a
    # violation (an inline script, a style block without the nonce, an image from elsewhere)
    # fails the test that caused it.
    violations: list[str] = []
    browser_page.on(
        "console",
        lambda message: (
            "Content Security Policy" in message.text and violations.append(message.text)
        ),
    )
    yield browser_page
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^\w.-]+", "_", request.node.name)
    try:
        browser_page.screenshot(path=str(SCREENSHOT_DIR / f"{name}.png"), full_page=True)
    except PlaywrightError as exc:  # a missing screenshot must not hide the test's own result
        warnings.warn(f"no screenshot for {request.node.nodeid}: {exc}", stacklevel=1)
    assert violations == [], f"Content-Security-Policy violations: {violations}"


def login(page: Page, live_server, email: str, password: str):
    """Log in through the site's login form (/accounts/login/) and wait for the page the form
    leads to: the home page on success, the login page with an error otherwise."""
    page.goto(f"{live_server.url}/accounts/login/")
    page.locator("input[name=username]").fill(email)
    page.locator("input[name=password]").fill(password)
    with page.expect_navigation():
        page.get_by_role("button", name="Log in").click()
    return page

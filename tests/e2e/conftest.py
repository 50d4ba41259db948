"""Browser tests: pytest-playwright drives Debian's Chromium (/usr/bin/chromium, never a downloaded
browser) against pytest-django's live server. In CI (CI set) a missing Chromium fails the run;
elsewhere these tests skip with the reason.

Screenshots go to test-artifacts/e2e/ (or $E2E_ARTIFACTS), one per page and width."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 900}
ARTIFACTS = Path(os.environ.get("E2E_ARTIFACTS", Path(__file__).resolve().parents[2] / "test-artifacts" / "e2e"))


def _chromium_missing() -> str | None:
    if not (os.path.exists(CHROMIUM) and shutil.which(CHROMIUM)):
        return f"{CHROMIUM} is not installed (apt-get install -y chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -r requirements-dev.txt)"
    return None


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """pytest-playwright launches Debian's Chromium with exactly these arguments (never a browser
    Playwright downloads)."""
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS, "headless": True}


@pytest.fixture(scope="session", autouse=True)
def _chromium_required():
    """Before pytest-playwright starts the browser: in CI a missing Chromium fails the run,
    elsewhere the browser tests skip with the reason.

    Playwright's sync API keeps an event loop in the test thread from the first browser test to the
    end of the session, so Django would take the ORM calls made around it for async code:
    DJANGO_ALLOW_ASYNC_UNSAFE is set from here on. The browser tests run last (tests/conftest.py
    puts them at the end), so no other test runs with it."""
    missing = _chromium_missing()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser tests: {missing}")
        pytest.skip(missing)
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    yield
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


class CspWatch:
    """Console messages of Content-Security-Policy refusals seen by a page."""

    def __init__(self):
        self.violations: list[str] = []

    def __call__(self, message):
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            self.violations.append(message.text)


@pytest.fixture
def phone(browser, live_server):
    context = browser.new_context(viewport=PHONE, base_url=live_server.url, accept_downloads=True)
    page = context.new_page()
    page.csp = CspWatch()
    page.on("console", page.csp)
    yield page
    context.close()


@pytest.fixture
def desktop(browser, live_server):
    context = browser.new_context(viewport=DESKTOP, base_url=live_server.url)
    page = context.new_page()
    page.csp = CspWatch()
    page.on("console", page.csp)
    yield page
    context.close()


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    width = page.viewport_size["width"]
    path = ARTIFACTS / f"{name}-{width}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def check_page(page, name: str) -> None:
    """Screenshot, then the checks every page must pass: no axe-core violation, no horizontal
    scroll, no Content-Security-Policy refusal."""
    from axe_playwright_python.sync_playwright import Axe

    screenshot(page, name)
    results = Axe().run(page)
    assert results.violations_count == 0, f"{name}: {results.generate_report()}"
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"{name}: {overflow}px of horizontal scroll at {page.viewport_size['width']}px"
    assert page.csp.violations == [], page.csp.violations


def log_in(page, username: str, password: str) -> None:
    page.goto("/login/")
    page.get_by_label("Email or username:", exact=True).fill(username)
    page.get_by_label("Password:", exact=True).fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/home/")

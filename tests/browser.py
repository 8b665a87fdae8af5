"""Headless Chromium for the page tests: Debian's chromium driven by Playwright at the size users judge pages by
(1440x900), with the page's JavaScript errors collected. Screenshots go to artifacts/ (git-ignored) for a person to
look at. A test module marks itself with ``pytestmark = BROWSER`` and takes the ``browser_page`` fixture
(tests/conftest.py)."""
import os
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
WIDTH, HEIGHT = 1440, 900

BROWSER = [
    pytest.mark.skipif(not os.path.exists(CHROMIUM),
                       reason=f"needs Debian's chromium at {CHROMIUM} (apt-get install chromium; .ci/run does it)"),
    pytest.mark.django_db(transaction=True),
]


def log_in(page, live_server, next_path="/", username="demo", password="demo"):
    page.goto(f"{live_server.url}/accounts/login/?next={next_path}")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}{next_path}")


def open_browser(monkeypatch):
    """A context manager's generator: a page in a fresh headless Chromium, closed after."""
    playwright = pytest.importorskip("playwright.sync_api")
    # Playwright's sync API runs an event loop in the test's thread; the ORM is idle meanwhile. Set for this test
    # only: left in the environment, it would reach later subprocesses (manage.py check --deploy refuses it).
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--no-first-run"])
        page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
        errors = []
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.errors = errors
        ARTIFACTS.mkdir(exist_ok=True)
        yield page
        browser.close()

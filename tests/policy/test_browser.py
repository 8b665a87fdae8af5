"""The policy page in headless Chromium at 1440x900 (issue 12, item 3): the answer an engineer ships from, the demo's
iPhone 14 row with cpuAndGPU, is in the first screen, above the break-even chart. Screenshot in artifacts/."""
from django.contrib.auth import get_user_model

from benchmarks.fleet import generate
from collector.bulk import bulk_load
from collector.models import Project
from tests.browser import ARTIFACTS, BROWSER, HEIGHT, log_in

pytestmark = BROWSER


def test_policy_first_screen_shows_what_to_ship(live_server, browser_page):
    demo = Project.objects.create(slug="demo", name="Demo fleet")
    bulk_load("demo", generate(6000, seed=7))  # as manage.py load_demo
    demo.members.add(get_user_model().objects.create_user("demo", password="demo"))
    page = browser_page
    log_in(page, live_server, "/policy")
    page.wait_for_function("() => { const el = document.getElementById('policy-break-even');"
                           " return el && el._fullData && el._fullData.length }", timeout=15_000)
    page.screenshot(path=str(ARTIFACTS / "policy-first-screen.png"))
    row = page.locator("#ship-table tr", has=page.locator("a", has_text="iPhone 14")).filter(
        has_not_text="Pro").filter(has_not_text="Plus").first
    box = row.bounding_box()
    assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= HEIGHT, box
    assert row.locator("td.use").inner_text().strip() == "cpuAndGPU"
    assert "failed" in row.locator("td.sure").inner_text()
    chart = page.locator("#policy-break-even").bounding_box()
    assert chart["y"] > box["y"]  # the chart follows the table
    # Pick another device for the chart: the select reloads the page with it.
    with page.expect_navigation():
        page.select_option("#break-even select[name=device]", "iPhone17,2")
    assert "device=iPhone17" in page.url
    assert "iPhone 16 Pro Max" in page.locator("#break-even").inner_text()
    page.goto(f"{live_server.url}/policy/guide")
    page.screenshot(path=str(ARTIFACTS / "policy-guide.png"))
    assert page.locator("article.guide h1").count() == 1
    assert page.errors == [], page.errors

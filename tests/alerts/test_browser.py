"""The alerts pages in headless Chromium at 1440×900 (issue 12): the demo-like fleet's A16 slowdown (several compute
units × metrics) is one summary row in the first screen of /alerts/, and its page lists the alerts with units.
Screenshots go to artifacts/ (git-ignored) for a person to look at."""
from django.contrib.auth import get_user_model

from alerts.check import check_project
from alerts.models import Alert
from benchmarks.fleet import GROUND_TRUTH, generate
from collector.bulk import bulk_load
from collector.models import Project
from tests.browser import ARTIFACTS, BROWSER, HEIGHT, log_in

SLOW = GROUND_TRUTH["slowdown"]

pytestmark = BROWSER


def test_the_a16_slowdown_is_one_summary_in_the_first_screen(live_server, browser_page):
    demo = Project.objects.create(slug="demo", name="Demo fleet")
    bulk_load("demo", generate(3000, seed=7))  # half of `manage.py load_demo`
    check_project(demo)
    slow = Alert.objects.filter(project=demo, kind="slowdown", model=SLOW["model"], version=SLOW["version"])
    assert len({(a.compute_units, a.metric) for a in slow}) > 1  # the slowdown is several alerts...
    user = get_user_model().objects.create_user("demo", password="demo")
    demo.members.add(user)
    page = browser_page
    log_in(page, live_server, "/alerts/")

    page.screenshot(path=str(ARTIFACTS / "alerts-list.png"))
    rows = page.locator("tr.alert-summary", has_text=f"{SLOW['model']} {SLOW['version']}")
    assert rows.count() == 1  # ...and one row
    box = rows.first.bounding_box()
    assert box and box["y"] + box["height"] <= HEIGHT, box  # in the first screen, whole
    text = rows.first.inner_text()
    assert SLOW["chip"] in text and str(slow.count()) in text and "ms" in text and "%" in text

    rows.first.locator("a").first.click()
    page.wait_for_selector("table.summary-alerts")
    page.screenshot(path=str(ARTIFACTS / "alerts-summary.png"))
    assert page.locator("table.summary-alerts tr[data-alert]").count() == slow.count()
    first = page.locator("table.summary-alerts tr[data-alert]").first
    assert first.bounding_box()["y"] < HEIGHT and " ms" in first.inner_text()
    assert page.errors == [], page.errors

"""Issue 12, items 6 and 8, in headless Chromium at 1440x900 on the demo fleet: every page with charts draws them with
the partial Plotly bundle (fetched once, by the first chart), pages without charts fetch no chart code, and the
compare page's log axis reads as durations. Screenshots go to artifacts/ (git-ignored) for a person to look at."""
import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from alerts.models import Alert
from benchmarks.fleet import generate
from collector.bulk import bulk_load
from collector.models import Project, Run

from tests.browser import ARTIFACTS, BROWSER

pytestmark = BROWSER

BUNDLE = "/static/dashboard/vendor/plotly-cartesian-4.1.1.min.js"


def test_every_chart_page_draws_with_the_partial_bundle(live_server, browser_page):
    demo = Project.objects.create(slug="demo", name="Demo fleet")
    bulk_load("demo", generate(3000, seed=7))
    call_command("check_regressions", project="demo", stdout=open("/dev/null", "w"))
    user = get_user_model().objects.create_user("demo", password="demo")
    demo.members.add(user)
    alert = Alert.objects.first()
    pages = [
        ("overview", "/", ["overview-heatmap"]),
        ("compare", "/compare", ["compare-box", "compare-failures", "compare-breakdown", "compare-first-warm"]),
        ("versions", "/versions", ["versions-panels", "versions-time"]),
        ("fleet", "/fleet", ["fleet-status", "fleet-stage", "fleet-coverage"]),
        ("policy", "/policy", ["policy-break-even"]),
        ("cold-start", "/policy/cold-start", ["coldstart-stages"]),
        ("run", f"/runs/{Run.objects.filter(status='ok').first().run_id}", ["run-warmup"]),
        ("alert", f"/alerts/{alert.pk}", ["alert-evidence"]),
        ("alerts", "/alerts/", []),
        ("profiling", "/profiling/", []),
    ]
    page = browser_page
    page.set_viewport_size({"width": 1440, "height": 900})
    requested = []
    page.on("request", lambda request: requested.append(request.url))

    page.goto(f"{live_server.url}/accounts/login/?next=/alerts/")
    page.fill("input[name=username]", "demo")
    page.fill("input[name=password]", "demo")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/alerts/")
    assert not [url for url in requested if "plotly" in url]  # the login and alerts pages have no chart

    for name, path, plots in pages:
        requested.clear()
        page.goto(live_server.url + path)
        page.wait_for_load_state("networkidle")
        drawn = page.evaluate("""() => [...document.querySelectorAll('.plotly-graph-div')].map(el => ({
            id: el.id, traces: (el._fullData || []).length, svg: el.querySelectorAll('.main-svg').length}))""")
        assert all(d["traces"] and d["svg"] for d in drawn), (name, drawn)  # every chart on the page is drawn
        assert set(plots) <= {d["id"] for d in drawn} and bool(drawn) == bool(plots), (name, drawn)
        bundles = [url for url in requested if "plotly" in url]
        assert bundles == ([live_server.url + BUNDLE] if plots else []), (name, bundles)
        page.screenshot(path=str(ARTIFACTS / f"weight-{name}.png"), full_page=True)
        if name == "compare":
            ticks = page.evaluate("() => [...document.querySelectorAll('#compare-box .ytick text')].map(t => t.textContent)")
            assert ticks and all(t.endswith((" ms", " s")) for t in ticks), ticks
            page.locator("#compare-failures").screenshot(path=str(ARTIFACTS / "weight-compare-failures.png"))
            page.locator("#compare-box").screenshot(path=str(ARTIFACTS / "weight-compare-box.png"))
    assert page.errors == [], page.errors

"""End to end in headless Chromium: the overview and compare pages of the demo fleet draw their Plotly plots with
data, without a JavaScript console error. Screenshots go to artifacts/ (git-ignored) for a person to look at."""
import pytest
from django.contrib.auth import get_user_model

from benchmarks.fleet import generate
from collector.bulk import bulk_load
from collector.models import Project
from tests.browser import ARTIFACTS, BROWSER, log_in

pytestmark = BROWSER

PAGES = [
    ("overview", "/?rows=chip", ["overview-heatmap"]),
    ("overview-crash-rate", "/?metric=crash_rate&rows=chip", ["overview-heatmap"]),
    ("compare", "/compare", ["compare-box", "compare-failures", "compare-breakdown", "compare-first-warm"]),
]


@pytest.fixture
def page(live_server, browser_page):
    """The browser page, logged in as a member of the demo project."""
    demo = Project.objects.create(slug="demo", name="Demo fleet")
    # Half the size `manage.py load_demo` loads: enough runs per chip for the screenshots to say something.
    bulk_load("demo", generate(3000, seed=7))
    demo.members.add(get_user_model().objects.create_user("demo", password="demo"))
    log_in(browser_page, live_server)
    return browser_page


def test_overview_and_compare_draw_plots(live_server, page):

    for name, path, plots in PAGES:
        page.goto(live_server.url + path)
        for plot in plots:
            page.wait_for_function(
                "id => { const el = document.getElementById(id); return el && el._fullData && el._fullData.length }",
                arg=plot, timeout=15_000)
            drawn = page.evaluate("""id => {
                const el = document.getElementById(id);
                const values = t => t.z || t.median || t.y || t.x || [];
                const points = el._fullData.reduce((n, t) => n + values(t).length, 0);
                return {traces: el._fullData.length, points, svg: el.querySelectorAll('.main-svg').length};
            }""", plot)
            assert drawn["traces"] > 0 and drawn["points"] > 0 and drawn["svg"] > 0, (name, plot, drawn)
        page.screenshot(path=str(ARTIFACTS / f"dashboard-{name}.png"), full_page=True)
    assert page.errors == [], page.errors


def test_overview_first_screen_never_paints_a15s_crashing_units_as_fastest(live_server, page):
    """Issue 12, item 1, as a user sees it at 1440x900: on the demo fleet's A15 Bionic row the units that fail in a
    third of runs are drawn in the failing colour with their failure rate, and the star is on cpuAndGPU."""
    page.goto(f"{live_server.url}/?rows=chip")
    page.wait_for_function("() => { const el = document.getElementById('overview-heatmap');"
                           " return el && el._fullData && el._fullData.length }", timeout=15_000)
    cells = page.evaluate("""() => {
        const el = document.getElementById('overview-heatmap');
        const out = {};
        for (const t of el._fullData) {
            const row = t.y.indexOf('A15 Bionic');
            if (row < 0) continue;
            t.x.forEach((unit, i) => { if (t.z[row][i] !== null && t.z[row][i] !== undefined)
                out[unit] = {trace: t.name, text: String(t.text[row][i])}; });
        }
        const box = el.getBoundingClientRect();
        return {cells: out, top: box.top};
    }""")
    page.screenshot(path=str(ARTIFACTS / "dashboard-overview-1440.png"))
    assert cells["top"] < 900, "the overview's matrix starts below the first screen"
    a15 = cells["cells"]
    for unit in ("cpuAndNeuralEngine", "all"):
        assert a15[unit]["trace"].startswith("fails in more than"), a15[unit]
        assert "failed" in a15[unit]["text"]
    assert a15["cpuAndGPU"]["text"].startswith("★"), a15["cpuAndGPU"]
    assert page.errors == [], page.errors

"""Issue 12, item 8: chart code only where a chart is, a partial Plotly bundle (cartesian) that has every trace type
the figure builders draw, served compressed and cacheable. The bytes per page are benchmarks/dashboard.py --weight's;
that the bundle draws every page's charts in a browser is tests/dashboard/test_browser_pages.py's."""
import json
import re

import pytest
from django.contrib.staticfiles import finders
from django.core.management import call_command
from django.http import HttpResponse
from django.test import RequestFactory
from django.urls import reverse

from collector.models import Run

BUNDLE = "dashboard/vendor/plotly-cartesian-4.1.1.min.js"
PLOTLY_SCRIPT = re.compile(r"<script[^>]*\bsrc=\"[^\"]*plotly", re.I)
CHART_CALL = re.compile(r'perfboardPlot\("([\w-]+)", ')


def bundle_traces() -> set[str]:
    """The trace types the vendored bundle registers."""
    text = open(finders.find(BUNDLE), encoding="utf-8").read()
    return set(re.findall(r'moduleType:"trace",name:"(\w+)"', text))


def chart_traces(html: str) -> dict[str, set[str]]:
    """{plot id: its trace types} of the charts on a page, read from their perfboardPlot calls."""
    out = {}
    for match in CHART_CALL.finditer(html):
        figure, _ = json.JSONDecoder().raw_decode(html, match.end())
        out[match.group(1)] = {trace.get("type", "scatter") for trace in figure["data"]}
    return out


def test_only_the_partial_bundle_ships():
    assert finders.find("dashboard/vendor/plotly.min.js") is None  # the full 4.8 MB bundle is gone
    assert {"bar", "box", "heatmap", "scatter"} <= bundle_traces()


def test_every_chart_draws_traces_the_bundle_has(member_client):
    run = Run.objects.filter(project__slug="demo").first()
    urls = [reverse("dashboard:overview"), reverse("dashboard:overview") + "?rows=chip&metric=crash_rate",
            reverse("dashboard:compare"), reverse("dashboard:compare") + "?metric=load_cold",
            reverse("dashboard:versions"), reverse("dashboard:fleet"), reverse("policy:policy"),
            reverse("policy:coldstart"), reverse("dashboard:run", args=[run.run_id])]
    drawn, available = set(), bundle_traces()
    for url in urls:
        html = member_client.get(url).content.decode()
        charts = chart_traces(html)
        assert charts, url
        for plot, types in charts.items():
            assert types <= available, (url, plot, types - available)
            drawn |= types
        assert not PLOTLY_SCRIPT.search(html), url  # the bundle comes with the first chart, not in the head
    assert drawn == {"bar", "box", "heatmap", "scatter"}


def test_pages_without_charts_load_no_chart_code(member_client):
    for url in [reverse("login"), reverse("profiling:jobs"), reverse("alerts:list")]:
        response = member_client.get(url)
        html = response.content.decode()
        assert response.status_code == 200 and chart_traces(html) == {}, url
        assert not PLOTLY_SCRIPT.search(html), url


@pytest.mark.django_db
def test_the_collected_bundle_is_served_compressed_and_cacheable(settings, tmp_path):
    from whitenoise.middleware import WhiteNoiseMiddleware

    settings.STATIC_ROOT = tmp_path
    call_command("collectstatic", "--noinput", verbosity=0)
    assert (tmp_path / f"{BUNDLE}.gz").is_file()
    settings.DEBUG, settings.WHITENOISE_USE_FINDERS, settings.WHITENOISE_AUTOREFRESH = False, False, False
    whitenoise = WhiteNoiseMiddleware(lambda request: HttpResponse(status=404))  # as production serves it
    response = whitenoise(RequestFactory().get(f"/static/{BUNDLE}", HTTP_ACCEPT_ENCODING="gzip, deflate"))
    assert response.status_code == 200 and response["Content-Encoding"] == "gzip"
    assert int(response["Content-Length"]) < 600_000  # 1.5 MB of script, about 0.5 MB on the wire
    assert "immutable" in response["Cache-Control"] and "max-age=315360000" in response["Cache-Control"]
    css = whitenoise(RequestFactory().get("/static/dashboard/dashboard.css", HTTP_ACCEPT_ENCODING="gzip"))
    assert "immutable" not in css["Cache-Control"]  # a file whose name does not change is revalidated

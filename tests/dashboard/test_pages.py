"""Every page: login required, renders on an empty database and on the demo fleet with a bounded number of queries,
filters narrow what is shown, and a user sees only the projects they are a member of."""
import re

import pytest
from django.urls import reverse

from collector.models import Project, Run, RunnerToken

PAGES = ["dashboard:overview", "dashboard:compare", "dashboard:versions", "dashboard:fleet"]
# Session, user, projects, model versions, devices for the filter bar, then each page's own aggregates.
MAX_QUERIES = 12
EXTERNAL_ASSET = re.compile(r"""<(?:script|link)\b[^>]*\b(?:src|href)=["'](?:https?:)?//""", re.I)


def plot_ids(html):
    return re.findall(r'<div id="([\w-]+)" class="plotly-graph-div"', html)


@pytest.mark.parametrize("page", PAGES + ["dashboard:run"])
def test_login_required(client, db, page):
    url = reverse(page, args=["3f6c2a0e-5d1b-4b7e-9a51-0c7d3e1f2a90"] if page == "dashboard:run" else [])
    response = client.get(url)
    assert response.status_code == 302 and response.url.startswith(reverse("login"))


@pytest.mark.parametrize("page", PAGES)
def test_pages_render_on_an_empty_database(empty_client, page, django_assert_max_num_queries):
    with django_assert_max_num_queries(MAX_QUERIES):
        response = empty_client.get(reverse(page))
    assert response.status_code == 200
    assert plot_ids(response.content.decode()) == []


@pytest.mark.parametrize("page, plots", [
    ("dashboard:overview", ["overview-heatmap"]),
    ("dashboard:compare", ["compare-box", "compare-failures", "compare-breakdown", "compare-first-warm"]),
    ("dashboard:versions", ["versions-panels", "versions-time"]),
    ("dashboard:fleet", ["fleet-status", "fleet-stage", "fleet-coverage"]),
])
def test_pages_render_the_fleet(member_client, page, plots, django_assert_max_num_queries):
    # A fixed number of queries whatever the number of runs, and the first view after the upload no more than the
    # next: nothing is computed on first use. overview: the policy's marks (policy.marks.policy_choices: the policy
    # table's evidence per device, the device list, the silent-fallback samples: sketch rows, and the runs that
    # uploaded a compute plan). fleet: its "benchmark next" reads the version's policy table (policy_table: 3
    # queries, and those two samples), and its counts and failures read runs by index besides the sketch rows (first
    # and last run, failed runs by stage). Each question the sketch rows answer first asks for the first pending run
    # (collector.sketches._first_pending), and so does the scope's "which versions have runs": the fleet page asks 6.
    # compare: its launch stages name no device and no day, so one query counts the rows of the two coarse tiers that
    # could answer them (collector.sketches.tier_for).
    extra = {"dashboard:overview": 6, "dashboard:compare": 1, "dashboard:fleet": 12}.get(page, 0)
    for _ in ("first view", "repeat view"):
        with django_assert_max_num_queries(MAX_QUERIES + extra):
            response = member_client.get(reverse(page))
    assert response.status_code == 200
    html = response.content.decode()
    assert plot_ids(html) == plots
    # plotly.js is served from here, not a CDN (a random CSRF token may well contain the letters "cdn"): the cartesian
    # bundle, fetched by the first chart (tests/dashboard/test_page_weight.py)
    assert 'data-chart-bundle="/static/dashboard/vendor/plotly-cartesian-4.1.1.min.js"' in html
    assert html.count("perfboardPlot(\"") == len(plots) and not EXTERNAL_ASSET.search(html)


@pytest.mark.parametrize("metric", ["warm", "load_cold", "load_cached", "load_in_memory", "first_prediction",
                                    "crash_rate"])
def test_every_overview_matrix_renders(member_client, metric):
    response = member_client.get(reverse("dashboard:overview"), {"metric": metric, "rows": "device"})
    assert response.status_code == 200 and plot_ids(response.content.decode()) == ["overview-heatmap"]


def test_overview_marks_where_it_fails(member_client):
    html = member_client.get(reverse("dashboard:overview"), {"rows": "chip", "metric": "crash_rate"}).content.decode()
    # The fleet's ground truth: face-retouch >= 3.2.0 crashes on A15 Bionic with the Neural Engine.
    hotspots = html.split("Where it fails")[1]
    assert "A15 Bionic" in hotspots and ("cpuAndNeuralEngine" in hotspots or "<td>all</td>" in hotspots)


def test_filters_narrow_what_is_shown(member_client):
    url = reverse("dashboard:overview")
    everything = member_client.get(url, {"rows": "chip"}).content.decode()
    assert "A13 Bionic" in everything and "A17 Pro" in everything
    narrowed = member_client.get(url, {"rows": "chip", "chip": "A17 Pro", "compute_units": ["all"]}).content.decode()
    figure = narrowed.split('class="plotly-graph-div"')[1]
    assert "A17 Pro" in figure and "A13 Bionic" not in figure
    assert '"cpuOnly"' not in figure and '"all"' in figure
    total = Run.objects.filter(model_version__name="face-retouch", model_version__version="3.3.0",
                               device__chip="A17 Pro", compute_units="all").count()
    assert f"· {total} run" in narrowed


def test_a_filter_that_matches_nothing_says_so(member_client):
    for page in PAGES[:3]:
        response = member_client.get(reverse(page), {"os_min": 90})
        assert response.status_code == 200 and "No runs match these filters" in response.content.decode()


def test_invalid_filters_are_reported_not_fatal(member_client):
    response = member_client.get(reverse("dashboard:compare"), {"compute_units": "gpu", "metric": "nonsense"})
    assert response.status_code == 200 and "Ignored filters" in response.content.decode()


def test_a_user_sees_only_their_projects(client, member, demo, fleet_runs):
    from collector.bulk import bulk_load

    other = Project.objects.create(slug="secret", name="Secret")
    bulk_load("secret", [dict(r, run_id=r["run_id"][:-4] + "ffff") for r in fleet_runs[:50]])
    demo.members.add(member)
    client.force_login(member)
    html = client.get(reverse("dashboard:overview")).content.decode()
    assert 'value="demo"' in html and 'value="secret"' not in html
    # Asking for the other project by name shows nothing of it.
    for page in PAGES:
        html = client.get(reverse(page), {"project": "secret"}).content.decode()
        assert plot_ids(html) == [] and 'value="secret"' not in html and "Secret" not in html
    run = Run.objects.filter(project=other).first()
    assert client.get(reverse("dashboard:run", args=[run.run_id])).status_code == 404


def test_the_fleet_page_lists_the_projects_own_last_uploads(member_client, fleet_runs):
    """"Most recent uploads" are the project's own newest runs, newest first, even after another project uploaded."""
    from collector.bulk import bulk_load

    bulk_load("other", [dict(r, run_id=r["run_id"][:-4] + "eeee") for r in fleet_runs[:30]])
    response = member_client.get(reverse("dashboard:fleet"), {"project": "demo"})
    newest = list(Run.objects.filter(project__slug="demo").order_by("-id").values_list("run_id", flat=True)[:20])
    assert [r.run_id for r in response.context["recent"]] == newest
    html = response.content.decode()
    assert all(reverse("dashboard:run", args=[run_id]) in html for run_id in newest)


def test_run_detail(client, member, demo, make_run, django_assert_max_num_queries):
    from collector.bulk import bulk_load

    bulk_load("demo", [make_run(predictions_ms=[14.0, 12.0, 11.9, 12.1])])
    run = Run.objects.get(has_compute_plan=True)
    demo.members.add(member)
    client.force_login(member)
    with django_assert_max_num_queries(MAX_QUERIES):
        response = client.get(reverse("dashboard:run", args=[run.run_id]))
    html = response.content.decode()
    assert response.status_code == 200
    assert plot_ids(html) == ["run-warmup", "run-timings", "run-plan"]
    assert "warm predictions" in html and "warm median" in html  # the series, read from RunPredictions
    assert "conv_0" in html and "neural_engine" in html


def test_failed_run_detail_shows_the_failure(member_client):
    run = Run.objects.filter(status="crash").first()
    html = member_client.get(reverse("dashboard:run", args=[run.run_id])).content.decode()
    assert run.failure_message in html and f"during {run.failure_stage}" in html
    assert "No compute plan was uploaded" in html


class TestCoverageApi:
    url = "/api/v1/coverage"

    def test_runner_token_reads_its_project(self, demo, client_for):
        token = RunnerToken.issue(demo, "lab")[1]
        response = client_for(token).get(self.url, {"model": "face-retouch", "version": "3.3.0"})
        assert response.status_code == 200
        body = response.json()
        assert body["project"] == "demo" and body["min_runs"] == 10
        cells = body["cells"]
        assert {c["model"] for c in cells} == {"face-retouch"} and {c["version"] for c in cells} == {"3.3.0"}
        assert sum(c["runs"] for c in cells) == Run.objects.filter(model_version__version="3.3.0",
                                                                    model_version__name="face-retouch").count()
        assert [c["runs"] for c in cells] == sorted(c["runs"] for c in cells)  # most needed first
        zero = cells[0]
        assert zero["runs"] == 0 and zero["under_sampled"] and zero["runs_needed"] == 10

    def test_under_sampled_only_and_filters(self, demo, client_for):
        token = RunnerToken.issue(demo, "lab")[1]
        response = client_for(token).get(self.url, {"under_sampled": "true", "chip": "A15 Bionic",
                                                    "compute_units": "all", "model": "face-retouch"})
        cells = response.json()["cells"]
        assert cells and all(c["under_sampled"] and c["chip"] == "A15 Bionic" and c["compute_units"] == "all"
                             for c in cells)

    def test_other_projects_are_out_of_reach(self, demo, client_for):
        other = Project.objects.create(slug="other", name="Other")
        token = RunnerToken.issue(other, "lab")[1]
        assert client_for(token).get(self.url, {"project": "demo"}).status_code == 404
        assert client_for(token).get(self.url).json()["cells"] == []

    def test_auth_and_policy_tokens(self, demo, client_for):
        assert client_for().get(self.url).status_code == 401
        policy = RunnerToken.issue(demo, "app", RunnerToken.POLICY)[1]
        assert client_for(policy).get(self.url).status_code == 403

    def test_logged_in_member_and_bad_filters(self, member_client):
        assert member_client.get(self.url).status_code == 200
        assert member_client.get(self.url, {"os_min": "x"}).status_code == 400

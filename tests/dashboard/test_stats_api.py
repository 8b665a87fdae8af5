"""GET /api/v1/stats, and the probe of issue 15 on every surface: 20 ok runs with a 100 ms cold load and 5 ms warm
predictions, plus 20 failed runs carrying 5,000 ms and 50 ms. Failed runs' timings must enter no median: the overview
page (every run, and filtered by OS), /api/v1/stats and /api/v1/policy all say 100 ms and 5 ms."""
import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from collector.bulk import bulk_load
from collector.models import Project, RunnerToken
from dashboard import queries
from dashboard.filters import Filters
from dashboard.queries import resolve_scope

STATS = "/api/v1/stats"
QUERY = {"model": "face-retouch", "version": "3.2.0"}


def probe_runs(make_run, ok=20, failed=20):
    runs = [make_run(timings_ms={"decrypt": None, "compile": 20.0, "load": 100.0, "first_prediction": 10.0},
                     predictions_ms=[5.0, 5.0, 5.0]) for _ in range(ok)]
    runs += [make_run(status="crash", failure={"stage": "prediction", "message": "killed"},
                      timings_ms={"decrypt": None, "compile": 20.0, "load": 5000.0, "first_prediction": 5000.0},
                      predictions_ms=[50.0, 50.0]) for _ in range(failed)]
    return runs


@pytest.fixture
def probe(project, make_run):
    bulk_load(project.slug, probe_runs(make_run))
    return project


@pytest.fixture
def member(probe, client):
    user = get_user_model().objects.create_user("probe-member", password="pw")
    probe.members.add(user)
    client.force_login(user)
    return client


# --- the probe, one test per surface ----------------------------------------------------------------------------

@pytest.mark.parametrize("extra", [{}, {"os_min": 17}], ids=["every run", "os filter"])
def test_probe_on_the_overview_and_compare_pages(member, extra):
    html = member.get(reverse("dashboard:overview"), {**QUERY, **extra, "metric": "load_cold"}).content.decode()
    assert "100.0 ms" in html and "2,550 ms" not in html and "· 40 runs" in html
    html = member.get(reverse("dashboard:overview"), {**QUERY, **extra, "metric": "warm"}).content.decode()
    assert "5.00 ms" in html and "27.5" not in html
    # What the compare page plots (its boxes and stage bars).
    scope = resolve_scope(Project.objects.all(), Filters(**QUERY, **extra))
    (boxes,) = queries.distribution_by_unit(scope.runs(), "load_cold", by="device").values()
    assert boxes["all"].median == 100.0 and boxes["all"].high == 100.0
    (timings,) = queries.unit_timings(scope.runs())
    assert timings.stages["cold"]["load"] == 100.0 and timings.warm == 5.0


def test_the_first_view_after_an_upload_shows_its_runs(member, runner, policy_token, client_for, make_run):
    """Nothing to refresh: the upload's own transaction updates what the pages, the stats API and the policy read, so
    the very next request of each counts the new runs, and they agree."""
    member.get(reverse("dashboard:overview"), QUERY)  # a page viewed before the upload keeps nothing stale
    member.get(reverse("dashboard:fleet"), QUERY)
    slower = [make_run(timings_ms={"decrypt": None, "compile": 20.0, "load": 400.0, "first_prediction": 10.0},
                       predictions_ms=[5.0, 5.0, 5.0]) for _ in range(40)]
    assert runner.post("/api/v1/runs", {"runs": slower}, format="json").status_code == 201
    html = member.get(reverse("dashboard:overview"), {**QUERY, "metric": "load_cold"}).content.decode()
    assert "· 80 runs" in html and "400.0 ms" in html  # 60 timed runs: 20 at 100 ms, 40 at 400
    (row,) = runner.get(STATS, {**QUERY, "metric": "load_cold", "by": "device"}).json()["rows"]
    assert (row["runs"], row["failures"], row["timed_runs"], row["median"]) == (80, 20, 60, 400.0)
    evidence = client_for(policy_token).get("/api/v1/policy", {**QUERY, "device": "iPhone15,2"}).json()["evidence"]
    assert (evidence["all"]["runs"], evidence["all"]["load_ms_median"]) == (80, 400.0)
    fleet = member.get(reverse("dashboard:fleet"), QUERY).context["counts"]
    assert (fleet["runs"], fleet["failures"]) == (80, 20)


def test_probe_in_the_stats_api(probe, runner):
    for metric, median in (("load_cold", 100.0), ("prediction", 5.0), ("first_prediction", 10.0)):
        body = runner.get(STATS, {**QUERY, "metric": metric, "by": "device"}).json()
        (row,) = body["rows"]
        assert row == {"device": "iPhone15,2", "name": row["name"], "compute_units": "all", "runs": 40,
                       "failures": 20, "failure_rate": 0.5, "timed_runs": 20, "median": median, "p10": median,
                       "p90": median}


def test_probe_in_the_policy_api(probe, runner):
    body = runner.get("/api/v1/policy", {**QUERY, "device": "iPhone15,2"}).json()
    evidence = body["evidence"]["all"]
    assert (evidence["load_ms_median"], evidence["prediction_ms_median"]) == (100.0, 5.0)
    assert evidence["runs"] == 40 and evidence["crash_rate"] == 0.5


# --- GET /api/v1/stats -------------------------------------------------------------------------------------------

def test_stats_answer_the_spec_shape_by_chip(probe, runner, make_run):
    bulk_load(probe.slug, [make_run(compute_units="cpuOnly", load_kind="cached",
                                    device={"identifier": "iPhone15,3", "os_version": "18.1.1"})])
    r = runner.get(STATS, {**QUERY, "metric": "load_cold"})
    assert r.status_code == 200, r.content
    body = r.json()
    assert {k: body[k] for k in ("model", "version", "metric", "unit", "by")} == {
        "model": "face-retouch", "version": "3.2.0", "metric": "load_cold", "unit": "ms", "by": "chip"}
    # Units from cpuOnly to all; the cached run counts in runs but gives no cold-load timing.
    assert [(r["chip"], r["compute_units"], r["runs"], r["timed_runs"], r["median"]) for r in body["rows"]] == [
        ("A16 Bionic", "cpuOnly", 1, 0, None), ("A16 Bionic", "all", 40, 20, 100.0)]
    cached = runner.get(STATS, {**QUERY, "metric": "load_cached", "compute_units": "cpuOnly"}).json()["rows"]
    assert [(r["compute_units"], r["timed_runs"], r["median"]) for r in cached] == [("cpuOnly", 1, 1430.2)]


def test_stats_filters_are_the_pages(probe, runner, make_run):
    bulk_load(probe.slug, [make_run(source="field", started_at="2026-11-22T10:00:00Z",
                                    timings_ms={"decrypt": None, "compile": 1.0, "load": 300.0,
                                                "first_prediction": 1.0}) for _ in range(3)])
    rows = runner.get(STATS, {**QUERY, "metric": "load_cold", "source": "field"}).json()["rows"]
    assert [(r["runs"], r["median"]) for r in rows] == [(3, 300.0)]
    rows = runner.get(STATS, {**QUERY, "metric": "load_cold", "started_before": "2026-11-21T00:00:00Z"}).json()["rows"]
    assert [(r["runs"], r["median"]) for r in rows] == [(40, 100.0)]
    rows = runner.get(STATS, {**QUERY, "metric": "load_cold", "started_after": "2026-11-21T00:00:00+01:00",
                              "device": "iPhone15,2", "os_min": 18, "os_max": 18, "variant": "in-memory-asset"}
                      ).json()["rows"]
    assert [(r["runs"], r["median"]) for r in rows] == [(3, 300.0)]
    assert runner.get(STATS, {**QUERY, "metric": "load_cold", "os_min": 19}).json()["rows"] == []


def test_stats_keep_one_specialization_strategy_apart(probe, runner, make_run):
    """A configuration's runs alone when asked (issue 14): fastPrediction's slower loads do not move the default's."""
    bulk_load(probe.slug, [make_run(optimization_hints={"specialization_strategy": "fastPrediction"},
                                    timings_ms={"decrypt": None, "compile": 1.0, "load": 900.0,
                                                "first_prediction": 1.0}) for _ in range(5)])
    fast = runner.get(STATS, {**QUERY, "metric": "load_cold", "specialization_strategy": "fastPrediction"}).json()
    assert [(r["runs"], r["median"]) for r in fast["rows"]] == [(5, 900.0)]
    default = runner.get(STATS, {**QUERY, "metric": "load_cold", "specialization_strategy": "default"}).json()
    assert [(r["runs"], r["median"]) for r in default["rows"]] == [(40, 100.0)]


@pytest.mark.parametrize("params, name", [
    ({"model": "no-such-model"}, "model"),
    ({"version": "9.9.9"}, "version"),
    ({"metric": "warm"}, "metric"),
    ({"metric": ""}, "metric"),
    ({"by": "os"}, "by"),
    ({"compute_units": "npu"}, "compute_units"),
    ({"device": "iPhone99,9"}, "device"),
    ({"os_min": "eighteen"}, "os_min"),
    ({"source": "cloud"}, "source"),
    ({"started_after": "yesterday"}, "started_after"),
    ({"started_before": "2026-11-21T00:00:00+16:00"}, "started_before"),
    ({"variant": ""}, "variant"),
    ({"specialization_strategy": "fastest"}, "specialization_strategy"),
])
def test_stats_400_names_the_parameter(probe, runner, params, name):
    r = runner.get(STATS, {**QUERY, "metric": "load_cold", **params})
    assert r.status_code == 400, r.content
    assert name in r.json(), r.json()


def test_stats_required_parameters(probe, runner):
    r = runner.get(STATS)
    assert r.status_code == 400 and {"model", "version", "metric"} <= r.json().keys()


def test_stats_runner_token_sees_its_own_project_only(probe, runner, client_for, make_run):
    bulk_load("other", [make_run(model={**make_run()["model"], "version": "7.0.0"})])
    other = RunnerToken.issue(Project.objects.get(slug="other"), "their-runner")[1]
    assert client_for(other).get(STATS, {**QUERY, "metric": "load_cold"}).status_code == 400  # no 3.2.0 there
    theirs = {**QUERY, "version": "7.0.0", "metric": "load_cold"}
    assert client_for(other).get(STATS, theirs).json()["rows"][0]["runs"] == 1
    r = runner.get(STATS, theirs)
    assert r.status_code == 400 and "version" in r.json()  # acme has no 7.0.0, and "other" is out of reach
    assert runner.get(STATS, {**theirs, "project": "other"}).status_code == 404


def test_stats_refuses_policy_tokens_and_anonymous_callers(probe, client_for, policy_token):
    query = {**QUERY, "metric": "load_cold"}
    assert client_for().get(STATS, query).status_code == 401
    assert client_for(policy_token).get(STATS, query).status_code == 403


def test_stats_for_a_member_of_several_projects(probe, member, make_run):
    bulk_load("second", probe_runs(make_run, ok=2, failed=0))
    user = get_user_model().objects.get(username="probe-member")
    Project.objects.get(slug="second").members.add(user)
    query = {**QUERY, "metric": "load_cold"}
    r = member.get(STATS, query)
    assert r.status_code == 400 and "project" in r.json()
    assert member.get(STATS, {**query, "project": "second"}).json()["rows"][0]["runs"] == 2
    assert member.get(STATS, {**query, "project": "acme"}).json()["rows"][0]["runs"] == 40
    assert member.get(STATS, {**query, "project": "nobody-s"}).status_code == 404

"""Silent Neural Engine fallback on the simulated fleet (issue 14, item 2): face-retouch from 3.3.0 runs
cpuAndNeuralEngine on the CPU on the A14 Bionic (benchmarks.fleet.SILENT_FALLBACK); one alert, at that version."""
import pytest
from django.contrib.auth import get_user_model

from alerts.check import check_project
from alerts.models import Alert
from alerts.notify import email_text
from benchmarks.fleet import SILENT_FALLBACK, SILENT_FALLBACK_TRUTH, generate
from collector.bulk import bulk_load
from collector.models import Project

pytestmark = pytest.mark.django_db

SLUG = "fallback-fleet"


@pytest.fixture(scope="module")
def fallback_fleet(django_db_setup, django_db_blocker):
    """face-retouch of a 6,000-run draw with the silent fallback (~3,300 runs)."""
    with django_db_blocker.unblock():
        Project.objects.filter(slug=SLUG).delete()
        bulk_load(SLUG, (r for r in generate(6000, 7, truth=SILENT_FALLBACK_TRUTH)
                         if r["model"]["name"] == "face-retouch"))
        project = Project.objects.get(slug=SLUG)
        try:
            yield project
        finally:
            project.delete()


def test_the_fallback_is_one_alert_at_the_version_it_starts(fallback_fleet):
    check_project(fallback_fleet)
    (alert,) = Alert.objects.filter(project=fallback_fleet, kind="silent_fallback")
    assert (alert.model, alert.version, alert.baseline_version, alert.chip, alert.compute_units) == (
        SILENT_FALLBACK["model"], SILENT_FALLBACK["from_version"], "3.2.0", SILENT_FALLBACK["chip"],
        "cpuAndNeuralEngine")
    assert alert.current > 2 * alert.baseline  # its warm predictions are now the CPU's
    again = check_project(fallback_fleet)
    assert again.created == []
    assert Alert.objects.filter(project=fallback_fleet, kind="silent_fallback").count() == 1
    assert not Alert.objects.filter(project=fallback_fleet, kind="silent_fallback").exclude(
        chip=SILENT_FALLBACK["chip"]).exists()


def test_the_alert_page_api_and_email_say_it(fallback_fleet, client):
    check_project(fallback_fleet)
    alert = Alert.objects.get(project=fallback_fleet, kind="silent_fallback")
    user = get_user_model().objects.create_user("fallback-reader", password="pw")
    fallback_fleet.members.add(user)
    client.force_login(user)
    page = client.get(f"/alerts/{alert.pk}")
    assert page.status_code == 200 and "silent" in page.content.decode().lower()
    listed = client.get("/api/v1/alerts", {"kind": "silent_fallback"}).json()
    assert [a["id"] for a in listed["results"]] == [alert.pk]
    subject, body = email_text(alert)
    assert "silent fallback" in subject and "cpuAndNeuralEngine runs on the CPU from 3.3.0" in body


def test_regression_series_keep_configurations_apart(step_runs, project, client):
    """A version whose runs set fastPrediction (here: slower predictions) is not a slowdown of the default
    configuration; a step within the fastPrediction runs is an alert of that configuration alone."""
    plain = step_runs({"1.0.0": 1.0, "1.1.0": 1.0}, n=20, seed=3)
    extra = step_runs({"1.1.0": 2.0}, n=30, seed=4)  # only in 1.1.0: pooled, the default series would step
    hinted = step_runs({"1.0.0": 0.8, "1.1.0": 1.2}, n=20, seed=5)  # a 50% step of fastPrediction's own
    for run in extra + hinted:
        run["optimization_hints"] = {"specialization_strategy": "fastPrediction"}
    bulk_load(project.slug, plain + extra + hinted)
    check_project(project)
    alerts = Alert.objects.filter(project=project)
    assert alerts.exists() and {a.specialization_strategy for a in alerts} == {"fastPrediction"}
    assert {a.kind for a in alerts} == {"slowdown"} and {a.version for a in alerts} == {"1.1.0"}
    user = get_user_model().objects.create_user("hints-alerts", password="pw")
    project.members.add(user)
    client.force_login(user)
    listed = client.get("/api/v1/alerts").json()["results"]
    assert {tuple(a["optimization_hints"].items()) for a in listed} == {(("specialization_strategy",
                                                                          "fastPrediction"),)}
    assert check_project(project).created == []  # its own fingerprint: found again, not made twice

"""An alert a later check no longer shows (more runs relocated or dissolved it) is withdrawn, not left as new."""
import pytest
from django.test import Client

from alerts.check import check_project
from alerts.models import Alert

pytestmark = pytest.mark.django_db


def _warm(project):
    return Alert.objects.filter(project=project, metric="prediction_ms_median")


@pytest.fixture
def raised(project, step_runs, add_runs):
    """20 runs of 1.2.0 from a slow first batch: a 25% step the first check alerts on."""
    add_runs(step_runs({"1.0.0": 1.0, "1.1.0": 1.0, "1.2.0": 1.25}))
    check_project(project)
    (alert,) = _warm(project)
    assert alert.version == "1.2.0" and alert.withdrawn_at is None
    return alert


def _more_runs_at_the_old_level(step_runs, add_runs):
    # 30 more runs of 1.2.0 at the old level: the version's runs, all 50 of them, show no step any more
    runs = step_runs({"1.2.0": 1.0}, n=30, seed=9)
    for i, run in enumerate(runs):
        run["started_at"] = f"2026-11-20T{i // 60:02d}:{i % 60:02d}:00Z"
    add_runs(runs)


def test_a_regression_more_runs_dissolve_is_withdrawn_once_and_listed_only_when_asked(project, raised, step_runs,
                                                                                      add_runs, runner, member):
    _more_runs_at_the_old_level(step_runs, add_runs)
    result = check_project(project)
    raised.refresh_from_db()
    assert raised.withdrawn_at is not None and raised.state == "new" and result.withdrawn >= 1
    assert result.created == []
    assert check_project(project).withdrawn == 0  # run again: nothing changes
    listed = [a["id"] for a in runner.get("/api/v1/alerts").json()["results"]]
    assert raised.id not in listed
    withdrawn = runner.get("/api/v1/alerts?withdrawn=true").json()["results"]
    assert raised.id in [a["id"] for a in withdrawn]
    assert all(a["withdrawn_at"] for a in withdrawn)
    web = Client()
    web.force_login(member)
    # its summary (all of whose alerts are withdrawn) leaves the list, and is there when withdrawn ones are asked for
    summary = f"/alerts/summary/{raised.summary_id}"
    assert summary not in web.get("/alerts/").content.decode()
    assert f"{summary}?withdrawn=true" in web.get("/alerts/?withdrawn=true").content.decode()
    assert f"/alerts/{raised.id}" in web.get(f"{summary}?withdrawn=true").content.decode()
    assert "Every alert of this summary was withdrawn" in web.get(summary).content.decode()
    assert "Withdrawn by the check of" in web.get(f"/alerts/{raised.id}").content.decode()


def test_a_withdrawn_regression_shown_again_is_restored_not_duplicated(project, raised, step_runs, add_runs):
    _more_runs_at_the_old_level(step_runs, add_runs)
    check_project(project)
    runs = step_runs({"1.2.0": 1.4}, n=60, seed=11)  # then the version slows down for good
    for i, run in enumerate(runs):
        run["started_at"] = f"2026-11-21T{i // 60:02d}:{i % 60:02d}:00Z"
    add_runs(runs)
    check_project(project)
    (alert,) = _warm(project)
    assert alert.id == raised.id and alert.withdrawn_at is None


def test_a_triaged_alert_is_never_withdrawn(project, raised, step_runs, add_runs):
    Alert.objects.filter(pk=raised.pk).update(state="acknowledged")
    _more_runs_at_the_old_level(step_runs, add_runs)
    check_project(project)
    raised.refresh_from_db()
    assert raised.withdrawn_at is None and raised.state == "acknowledged"


def test_a_check_of_one_version_withdraws_nothing_at_other_versions(project, raised, step_runs, add_runs):
    _more_runs_at_the_old_level(step_runs, add_runs)
    assert check_project(project, "face-retouch", "1.1.0").withdrawn == 0
    raised.refresh_from_db()
    assert raised.withdrawn_at is None
    assert check_project(project, "face-retouch", "1.2.0").withdrawn >= 1

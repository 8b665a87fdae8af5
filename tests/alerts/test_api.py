"""GET /api/v1/alerts as ../shared/spec/API.md describes it, triage, and who may see and change which alert."""
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from alerts.models import Alert, AlertSummary
from collector.models import RunnerToken
from tests.broker import broker  # noqa: F401

pytestmark = pytest.mark.django_db

SPEC_FIELDS = {"id", "kind", "state", "model", "version", "baseline_version", "device", "chip", "compute_units",
               "metric", "baseline", "current", "change", "p_value", "runs", "created_at"}


def test_alert_carries_the_spec_fields(runner, make_alert):
    alert = make_alert()
    body = runner.get("/api/v1/alerts").json()
    assert body["count"] == 1
    (item,) = body["results"]
    assert SPEC_FIELDS <= set(item)
    assert {k: item[k] for k in SPEC_FIELDS - {"created_at"}} == {
        "id": alert.id, "kind": "slowdown", "state": "new", "model": "face-retouch", "version": "3.3.0",
        "baseline_version": "3.2.0", "device": "iPhone15,2", "chip": "A16 Bionic",
        "compute_units": "cpuAndNeuralEngine", "metric": "prediction_ms_median", "baseline": 12.1, "current": 14.0,
        "change": 0.157, "p_value": 0.0004, "runs": {"baseline": 120, "current": 64}}
    assert item["created_at"].endswith("Z")


def test_chip_alert_has_no_device_and_placement_lists_ops(runner, make_alert):
    make_alert(device=None, kind="placement", metric="neural_engine_share", p_value=None, ops=["conv_3"])
    (item,) = runner.get("/api/v1/alerts").json()["results"]
    assert item["device"] is None and item["ops"] == ["conv_3"] and item["kind"] == "placement"


def test_newest_first_filters_and_pages(runner, make_alert):
    now = timezone.now()
    old = make_alert(created_at=now - timedelta(days=2))
    crash = make_alert(kind="crash_rate", metric="crash_rate", version="3.2.0", baseline_version="3.1.0",
                       chip="A15 Bionic", device="iPhone14,5", compute_units="all", created_at=now - timedelta(days=1))
    newest = make_alert(model="style-diffusion", version="1.1.0", baseline_version="1.0.0", state="acknowledged",
                        created_at=now)

    def ids(query=""):
        return [a["id"] for a in runner.get(f"/api/v1/alerts{query}").json()["results"]]

    assert ids() == [newest.id, crash.id, old.id]
    assert ids("?model=face-retouch") == [crash.id, old.id]
    assert ids("?model=face-retouch&version=3.3.0") == [old.id]
    assert ids("?device=iPhone14,5") == [crash.id]
    assert ids("?compute_units=all") == [crash.id]
    assert ids("?kind=crash_rate") == [crash.id]
    assert ids("?state=acknowledged") == [newest.id]
    assert ids("?state=new&kind=slowdown") == [old.id]
    assert runner.get("/api/v1/alerts?kind=nonsense").status_code == 400
    page = runner.get("/api/v1/alerts?page_size=2").json()
    assert page["count"] == 3 and len(page["results"]) == 2 and page["next"]


def test_another_projects_token_or_member_sees_nothing(client_for, make_alert, other_project, outsider):
    alert = make_alert()
    token = RunnerToken.issue(other_project, "their-runner")[1]
    assert client_for(token).get("/api/v1/alerts").json()["count"] == 0
    assert client_for(token).get(f"/api/v1/alerts/{alert.id}").status_code == 404
    web = Client()
    web.force_login(outsider)
    assert web.get("/api/v1/alerts").json()["count"] == 0
    assert web.get(f"/alerts/{alert.id}").status_code == 404
    assert alert.model not in web.get("/alerts/").content.decode()


def test_policy_token_and_anonymous_are_refused(client_for, policy_token, make_alert):
    make_alert()
    assert client_for(policy_token).get("/api/v1/alerts").status_code == 403
    assert client_for().get("/api/v1/alerts").status_code == 401


def test_member_triages_and_who_and_when_are_recorded(make_alert, member):
    alert = make_alert()
    api = Client()
    api.force_login(member)
    r = api.patch(f"/api/v1/alerts/{alert.id}", {"state": "acknowledged"}, content_type="application/json")
    assert r.status_code == 200, r.content
    assert r.json()["state"] == "acknowledged" and r.json()["state_changed_by"] == "ana"
    alert.refresh_from_db()
    assert alert.state == "acknowledged" and alert.state_changed_by == member and alert.state_changed_at
    assert api.patch(f"/api/v1/alerts/{alert.id}", {"state": "gone"},
                     content_type="application/json").status_code == 400


def test_other_projects_member_and_tokens_cannot_change_an_alert(make_alert, outsider, runner, other_project):
    alert = make_alert()
    web = Client(enforce_csrf_checks=False)
    web.force_login(outsider)
    assert web.patch(f"/api/v1/alerts/{alert.id}", {"state": "invalid"},
                     content_type="application/json").status_code == 404
    assert web.post(f"/alerts/{alert.id}/state", {"state": "invalid"}).status_code == 404
    # A runner token of the alert's own project reads it but does not triage: a state change needs a person.
    assert runner.get(f"/api/v1/alerts/{alert.id}").status_code == 200
    assert runner.patch(f"/api/v1/alerts/{alert.id}", {"state": "invalid"}, format="json").status_code == 403
    alert.refresh_from_db()
    assert alert.state == "new" and alert.state_changed_by is None


def test_dashboard_state_change_needs_csrf_and_records_the_user(make_alert, member):
    alert = make_alert()
    web = Client(enforce_csrf_checks=True)
    web.force_login(member)
    assert web.post(f"/alerts/{alert.id}/state", {"state": "fixed"}).status_code == 403  # no CSRF token
    page = web.get(f"/alerts/{alert.id}")
    assert page.status_code == 200 and 'id="alert-evidence"' in page.content.decode()
    token = page.cookies["csrftoken"].value
    r = web.post(f"/alerts/{alert.id}/state", {"state": "fixed", "csrfmiddlewaretoken": token})
    assert r.status_code == 302
    alert.refresh_from_db()
    assert (alert.state, alert.state_changed_by) == ("fixed", member)


def test_alert_pages_group_per_model_version_and_show_evidence(project, member, step_runs, add_runs):
    from alerts.check import check_project

    add_runs(step_runs({"1.0.0": 1.0, "1.1.0": 1.0, "1.2.0": 1.25}))
    add_runs(step_runs({"1.0.0": 1.0, "1.1.0": 1.0, "1.2.0": 1.0}, n=30, crash_rates={"1.2.0": 0.3},
                       device="iPhone14,5", seed=4))
    check_project(project)
    web = Client()
    web.force_login(member)
    page = web.get("/alerts/?model=face-retouch").content.decode()
    (summary,) = AlertSummary.objects.filter(project=project)
    assert page.count('class="alert-summary"') == 1 and "face-retouch 1.2.0" in page
    assert "A15 Bionic, A16 Bionic" in page
    listing = web.get(f"/alerts/summary/{summary.id}").content.decode()
    assert "all A16 Bionic" in listing and "all A15 Bionic" in listing
    for alert in Alert.objects.filter(project=project):
        detail = web.get(f"/alerts/{alert.id}")
        assert detail.status_code == 200 and 'id="alert-evidence"' in detail.content.decode()
    assert "No alerts" in web.get("/alerts/?kind=placement").content.decode()


def test_check_button_starts_a_check_of_one_model_version(project, member, step_runs, add_runs, broker):  # noqa: F811
    broker.up()  # a real Redis: the check is queued there, and read back
    web = Client()
    web.force_login(member)
    r = web.post("/alerts/check", {"project": "acme", "model": "face-retouch", "version": "1.2.0"})
    assert r.status_code == 302 and "version=1.2.0" in r["Location"]
    assert [m["args"] for m in broker.take("alerts.check_regressions")] == [["acme", "face-retouch", "1.2.0"]]
    assert web.post("/alerts/check", {"project": "globex", "model": "m", "version": "1"}).status_code == 404


def test_a_bad_filter_on_the_alerts_page_is_named_and_the_others_still_apply(make_alert, member):
    slowdown = make_alert()
    web = Client()
    web.force_login(member)
    page = web.get("/alerts/?compute_units=allTheThings&kind=crash_rate").content.decode()
    assert "Filter ignored, compute_units: Select a valid choice." in page
    assert f"/alerts/summary/{slowdown.summary_id}" not in page  # kind=crash_rate still applied
    assert f"/alerts/summary/{slowdown.summary_id}" in web.get("/alerts/?compute_units=allTheThings").content.decode()

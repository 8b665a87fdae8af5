"""Alert summaries (issue 12, item 5): a model version's alerts are one summary, triaged together or one by one,
with notes; the check files each alert in its summary once; GET /api/v1/alerts names the summary."""
import pytest
from django.test import Client

from alerts.check import check_project
from alerts.models import Alert, AlertNote, AlertSummary
from benchmarks.fleet import GROUND_TRUTH
from collector.models import RunnerToken

pytestmark = pytest.mark.django_db

SLOW = GROUND_TRUTH["slowdown"]


def web_for(user):
    web = Client()
    web.force_login(user)
    return web


def test_the_fleets_a16_slowdown_is_one_summary_with_units(fleet, django_user_model):
    check_project(fleet)
    slow = Alert.objects.filter(project=fleet, kind="slowdown")
    assert slow.count() > 1 and len({(a.compute_units, a.metric) for a in slow}) > 1  # units × metrics
    (summary,) = {a.summary for a in slow}
    assert (summary.model, summary.version) == (SLOW["model"], SLOW["version"])
    user = django_user_model.objects.create_user("lee", password="pw")
    fleet.members.add(user)
    web = web_for(user)
    listing = web.get(f"/alerts/?project={fleet.slug}").content.decode()
    assert listing.count(f'data-summary="{summary.id}"') == 1
    assert listing.count(f"{SLOW['model']} {SLOW['version']}</strong>") == 1
    assert f"{slow.count()}<br>" in listing and f"{slow.count()} new" in listing  # the count, by state
    page = web.get(f"/alerts/summary/{summary.id}").content.decode()
    assert page.count("data-alert=") == slow.count()
    assert " ms</td>" in page  # baseline and current with their unit
    crash = Alert.objects.filter(project=fleet, kind="crash_rate").first()
    crash_page = web.get(f"/alerts/summary/{crash.summary_id}").content.decode()
    assert f"{crash.current:.1%}</td>" in crash_page  # rates in %


def test_summary_triage_sets_its_alerts_but_not_one_triaged_separately(make_alert, member):
    first, second, third = make_alert(), make_alert(compute_units="all"), make_alert(compute_units="cpuAndGPU")
    other_version = make_alert(version="3.4.0")
    assert len({first.summary_id, second.summary_id, third.summary_id}) == 1
    assert other_version.summary_id != first.summary_id
    web = web_for(member)
    r = web.post(f"/alerts/{third.id}/state", {"state": "invalid", "note": "thermal throttling on that phone"})
    assert r.status_code == 302
    r = web.post(f"/alerts/summary/{first.summary_id}/state",
                 {"state": "acknowledged", "note": "bisecting the 3.3.0 converter change"})
    assert r.status_code == 302
    states = dict(Alert.objects.values_list("id", "state"))
    assert states == {first.id: "acknowledged", second.id: "acknowledged", third.id: "invalid",
                      other_version.id: "new"}
    assert {a.state_changed_by for a in Alert.objects.filter(id__in=[first.id, second.id])} == {member}
    summary = AlertSummary.objects.get(pk=first.summary_id)
    assert (summary.state, summary.state_changed_by) == ("acknowledged", member)
    # set back to new on the summary: still not the separately triaged alert
    web.post(f"/alerts/summary/{summary.id}/state", {"state": "new"})
    assert Alert.objects.get(pk=third.id).state == "invalid" and Alert.objects.get(pk=first.id).state == "new"


def test_notes_are_stored_with_who_and_when_and_shown(make_alert, member):
    alert = make_alert()
    web = web_for(member)
    web.post(f"/alerts/summary/{alert.summary_id}/state", {"state": "new", "note": "looking at it <b>now</b>"})
    web.post(f"/alerts/{alert.id}/state", {"state": "fixed", "note": "fixed in 3.3.1"})
    notes = list(AlertNote.objects.order_by("id"))
    assert [(n.alert_id, n.author, n.state, n.text) for n in notes] == [
        (None, member, "", "looking at it <b>now</b>"), (alert.id, member, "fixed", "fixed in 3.3.1")]
    assert all(n.created_at for n in notes)
    page = web.get(f"/alerts/summary/{alert.summary_id}").content.decode()
    assert "looking at it &lt;b&gt;now&lt;/b&gt;" in page and "fixed in 3.3.1" in page and ">ana<" in page
    assert "fixed in 3.3.1" in web.get(f"/alerts/{alert.id}").content.decode()


def test_api_alerts_carry_their_summary_and_summaries_are_listed(runner, make_alert, member, client_for,
                                                                 other_project):
    first, second = make_alert(), make_alert(compute_units="all")
    withdrawn_only = make_alert(version="3.0.0")
    Alert.objects.filter(pk=withdrawn_only.pk).update(withdrawn_at=first.created_at)
    items = runner.get("/api/v1/alerts").json()["results"]
    assert {i["id"]: i["summary"] for i in items} == {first.id: first.summary_id, second.id: second.summary_id}
    (summary,) = runner.get("/api/v1/alert-summaries").json()["results"]  # the withdrawn one's is hidden
    assert summary["id"] == first.summary_id and summary["alerts"] == sorted([first.id, second.id])
    assert (summary["model"], summary["version"], summary["state"]) == ("face-retouch", "3.3.0", "new")
    assert runner.patch(f"/api/v1/alert-summaries/{first.summary_id}", {"state": "fixed"},
                        format="json").status_code == 403  # a token reads, a person triages
    api = web_for(member)
    r = api.patch(f"/api/v1/alert-summaries/{first.summary_id}", {"state": "fixed", "note": "3.3.1"},
                  content_type="application/json")
    assert r.status_code == 200 and r.json()["state"] == "fixed" and r.json()["notes"][0]["text"] == "3.3.1"
    assert set(Alert.objects.filter(summary_id=first.summary_id).values_list("state", flat=True)) == {"fixed"}
    theirs = client_for(RunnerToken.issue(other_project, "their-runner")[1])
    assert theirs.get("/api/v1/alert-summaries").json()["count"] == 0
    assert theirs.get(f"/api/v1/alert-summaries/{first.summary_id}").status_code == 404


def test_the_check_files_alerts_in_one_summary_once(project, step_runs, add_runs):
    add_runs(step_runs({"1.0.0": 1.0, "1.1.0": 1.0, "1.2.0": 1.25}))
    add_runs(step_runs({"1.0.0": 1.0, "1.1.0": 1.0, "1.2.0": 1.25}, device="iPhone14,5", seed=4))
    first = check_project(project)
    assert len(first.created) > 1
    (summary,) = AlertSummary.objects.filter(project=project)
    assert (summary.model, summary.version) == ("face-retouch", "1.2.0")
    assert set(Alert.objects.filter(project=project).values_list("summary_id", flat=True)) == {summary.id}
    alerts = set(Alert.objects.values_list("id", "summary_id"))
    again = check_project(project, "face-retouch", "1.2.0")
    assert again.created == [] and set(Alert.objects.values_list("id", "summary_id")) == alerts
    assert AlertSummary.objects.count() == 1

"""The access table of docs/security.md, request by request: who may upload, read and triage what."""
import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from alerts.models import Alert, fingerprint
from collector.models import Project, RunnerToken

READS = ["/api/v1/runs", "/api/v1/coverage", "/api/v1/alerts",
         "/api/v1/stats?model=face-retouch&version=3.2.0&metric=load_cold"]
POLICY = ["/api/v1/policy?model=face-retouch&version=3.2.0&device=iPhone15,2",
          "/api/v1/policy/export?model=face-retouch&version=3.2.0"]


@pytest.fixture
def world(db, project, runner, make_run, client_for):
    """The acme project with a run and an alert; a policy token; a member; another project with its own token."""
    run = make_run()
    assert runner.post("/api/v1/runs", run, format="json").status_code == 201
    alert = Alert.objects.create(project=project, kind="slowdown", model="face-retouch", version="3.2.0",
                                 chip="A16 Bionic", compute_units="all", metric="prediction_ms_median",
                                 baseline=12.1, current=14.0, change=0.157, p_value=0.0004, runs_baseline=120,
                                 runs_current=64,
                                 fingerprint=fingerprint("slowdown", "face-retouch", "3.2.0", "A16 Bionic", "all",
                                                         "prediction_ms_median"))
    member = client_for()
    user = get_user_model().objects.create_user("ana", password="pw")
    project.members.add(user)
    member.force_login(user)
    other = Project.objects.create(slug="globex", name="Globex")
    return {"run": run, "alert": alert, "member": member,
            "policy": client_for(RunnerToken.issue(project, "app", RunnerToken.POLICY)[1]),
            "other": client_for(RunnerToken.issue(other, "lab")[1]), "anonymous": client_for()}


def test_runner_token_uploads_and_reads_its_own_project(world, runner, make_run):
    for path in READS + POLICY:
        assert runner.get(path).status_code == 200, path
    assert runner.patch(f"/api/v1/alerts/{world['alert'].id}", {"state": "acknowledged"},
                        format="json").status_code == 403


def test_policy_token_reads_policies_only(world, make_run):
    client = world["policy"]
    for path in POLICY:
        assert client.get(path).status_code == 200, path
    for path in READS:
        assert client.get(path).status_code == 403, path
    assert client.post("/api/v1/runs", make_run(), format="json").status_code == 403


def test_member_reads_and_triages_but_does_not_upload(world, make_run):
    client = world["member"]
    for path in READS + POLICY:
        assert client.get(f"{path}{'&' if '?' in path else '?'}project=acme").status_code == 200, path
    assert client.patch(f"/api/v1/alerts/{world['alert'].id}", {"state": "acknowledged"},
                        format="json").status_code == 200
    assert client.post("/api/v1/runs", make_run(), format="json").status_code == 403


def test_another_projects_token_sees_nothing_of_this_one(world):
    client = world["other"]
    assert client.get(f"/api/v1/runs/{world['run']['run_id']}").status_code == 404
    assert client.get(f"/api/v1/alerts/{world['alert'].id}").status_code == 404
    assert client.get("/api/v1/runs").json()["count"] == 0
    assert client.get("/api/v1/alerts").json()["count"] == 0
    assert client.get(POLICY[0]).status_code == 404


def test_anyone_else_is_401_and_pages_ask_for_a_login(world, runner, make_run):
    client = world["anonymous"]
    for path in READS + POLICY:
        assert client.get(path).status_code == 401, path
    assert client.post("/api/v1/runs", make_run(), format="json").status_code == 401
    for page in ["/", "/policy", "/alerts/", "/profiling/"]:
        answer = runner.get(page)  # a token is not a login
        assert answer.status_code == 302 and "/accounts/login/" in answer.url, page


def test_a_revoked_token_is_refused_at_once(world, runner):
    call_command("revoke_runner_token", "acme", "lab-mac-1")
    assert runner.get("/api/v1/runs").status_code == 401

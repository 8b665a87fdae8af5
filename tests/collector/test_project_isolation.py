"""Issue 11 #5: a run_id is the idempotency key within its project; projects never see, block or answer for each other."""
import json

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from collector.models import Project, Run, RunnerToken

URL = "/api/v1/runs"


def post(client, body):
    return client.post(URL, data=json.dumps(body), content_type="application/json")


@pytest.fixture
def other(client_for, project):
    b = Project.objects.create(slug="beta", name="Beta")
    return b, client_for(RunnerToken.issue(b, "lab")[1])


def test_another_project_stores_a_run_under_the_same_run_id(runner, make_run, project, other):
    b, b_client = other
    run = make_run()
    a_answer = post(runner, run)
    assert a_answer.status_code == 201
    a_id = a_answer.json()["id"]

    r = post(b_client, run)
    assert r.status_code == 201, r.content
    assert r.json()["status"] == "created" and r.json()["id"] != a_id
    assert Run.objects.filter(run_id=run["run_id"]).count() == 2
    assert Run.objects.get(project=b, run_id=run["run_id"]).id == r.json()["id"]

    # A changed body in B is B's own run: created, never a 409 confirming that A holds the id.
    changed = dict(make_run(), run_id=run["run_id"], timings_ms={**run["timings_ms"], "load": 999.0})
    c_project = Project.objects.create(slug="gamma", name="Gamma")
    c_client = APIClient()
    c_client.credentials(HTTP_AUTHORIZATION=f"Bearer {RunnerToken.issue(c_project, 'lab')[1]}")
    r = post(c_client, {"runs": [changed]})
    assert r.status_code == 201, r.content
    assert r.json()["runs"][0]["status"] == "created" and r.json()["runs"][0]["id"] != a_id

    # Each project's re-send is its own duplicate, with its own id; A's copy is untouched.
    again = post(b_client, run)
    assert again.status_code == 200 and again.json()["id"] == Run.objects.get(project=b, run_id=run["run_id"]).id
    assert post(runner, run).json() == {**a_answer.json(), "status": "duplicate"}
    a_row = Run.objects.get(project=project, run_id=run["run_id"])
    assert a_row.id == a_id and a_row.load_ms == 1430.2
    assert Run.objects.get(project=c_project, run_id=run["run_id"]).load_ms == 999.0


def test_a_changed_body_is_409_only_within_the_project(runner, make_run, other):
    _, b_client = other
    run = make_run()
    post(runner, run)
    post(b_client, run)
    changed = dict(run, timings_ms={**run["timings_ms"], "load": 999.0})
    r = post(b_client, changed)
    assert r.status_code == 409 and r.json()["run_ids"] == [run["run_id"]]
    assert "this project" in r.json()["detail"]
    assert Run.objects.filter(run_id=run["run_id"], load_ms=999.0).count() == 0


def test_detail_reads_the_callers_copy(runner, make_run, project, other):
    b, b_client = other
    run = make_run()
    post(runner, run)
    post(b_client, dict(run, timings_ms={**run["timings_ms"], "load": 777.0}))
    assert runner.get(f"{URL}/{run['run_id']}").json()["timings_ms"]["load"] == 1430.2
    assert b_client.get(f"{URL}/{run['run_id']}").json()["timings_ms"]["load"] == 777.0

    member = User.objects.create_user("both", password="x")
    project.members.add(member)
    b.members.add(member)
    client = APIClient()
    client.force_login(member)
    ambiguous = client.get(f"{URL}/{run['run_id']}")
    assert ambiguous.status_code == 400 and "project" in ambiguous.json()
    assert client.get(f"{URL}/{run['run_id']}?project=beta").json()["project"] == "beta"
    assert client.get(f"{URL}/{run['run_id']}?project=acme").json()["project"] == "acme"
    assert client.get(f"{URL}/{run['run_id']}?project=nope").status_code == 404
    assert client.get(f"{URL}/{run['run_id']}?project=a%00b").status_code == 400

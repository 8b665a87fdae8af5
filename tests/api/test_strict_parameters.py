"""Parameters the API cannot read are 400s naming them, never quietly read as "any" or as a default (issue 11:
found by the schemathesis fuzz)."""
import pytest


@pytest.mark.django_db
@pytest.mark.parametrize("query, parameter", [
    ("status=", "status"),
    ("compute_units=&source=lab", "compute_units"),
    ("started_before=", "started_before"),
    ("page_size=-3", "page_size"),
    ("page_size=abc", "page_size"),
    ("page_size=1001", "page_size"),
    ("page=last", "page"),
    ("page=0", "page"),
])
def test_runs_refuse_blank_and_unreadable_parameters(runner, query, parameter):
    answer = runner.get(f"/api/v1/runs?{query}")
    assert answer.status_code == 400 and parameter in answer.json(), answer.content


@pytest.mark.django_db
@pytest.mark.parametrize("query, parameter", [("withdrawn=null", "withdrawn"), ("withdrawn=maybe", "withdrawn"),
                                              ("kind=", "kind"), ("page_size=0", "page_size")])
def test_alerts_refuse_blank_and_unreadable_parameters(runner, query, parameter):
    answer = runner.get(f"/api/v1/alerts?{query}")
    assert answer.status_code == 400 and parameter in answer.json(), answer.content


@pytest.mark.django_db
def test_readable_parameters_still_work(runner, make_run):
    runner.post("/api/v1/runs", {"runs": [make_run(), make_run(status="crash", predictions_ms=[],
                                                          failure={"stage": "load", "message": "x"})]}, format="json")
    assert runner.get("/api/v1/runs?page_size=1&page=2").json()["count"] == 2
    assert runner.get("/api/v1/runs?status=crash").json()["count"] == 1
    assert runner.get("/api/v1/alerts?withdrawn=true").status_code == 200
    assert runner.get("/api/v1/alerts?withdrawn=0").status_code == 200
    assert runner.get("/api/v1/coverage?under_sampled=maybe").status_code == 400

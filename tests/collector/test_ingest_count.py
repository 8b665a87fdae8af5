"""Issue 13, item 3: an oversized batch is refused by counting its runs, before any run is validated; the duplicate
check is one query scoped to the project."""
import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from collector import upload
from collector.ingest import stored_runs
from collector.models import Project, Run
from collector.upload import UploadError, count_runs, parse_runs

URL = "/api/v1/runs"


def test_count_runs_reads_the_batch_shape_only():
    assert count_runs(b'{"runs": [{"a": 1}, {"b": [1, 2, {"c": null}]}, 3]}') == 3
    assert count_runs(b'{"run_id": "x"}') is None  # a single run
    assert count_runs(b'{"runs": "no"}') is None  # pydantic names the error
    assert count_runs(b'{"runs": [1,') is None  # invalid JSON: pydantic's message
    assert count_runs(b"[1, 2]") is None


def test_oversized_batch_is_413_without_validating_a_run(make_run, monkeypatch):
    class Refuse:
        @staticmethod
        def model_validate_json(body):
            raise AssertionError("validated an oversized batch")

    monkeypatch.setattr(upload, "BatchIn", Refuse)
    monkeypatch.setattr(upload, "RunIn", Refuse)
    run = json.dumps(make_run())
    body = ('{"runs": [' + ",".join([run] * 1001) + "]}").encode()
    with pytest.raises(UploadError) as caught:
        parse_runs(body)
    assert caught.value.status == 413
    assert caught.value.errors["body"][0]["field"] == "runs"


def test_oversized_batch_with_invalid_runs_is_still_413(runner):
    body = json.dumps({"runs": [{"run_id": "not a uuid"}] * 1001})
    r = runner.post(URL, data=body, content_type="application/json")
    assert r.status_code == 413, r.content
    assert r.json()["errors"]["body"][0]["field"] == "runs"


def test_a_full_batch_is_accepted(runner, make_run):
    r = runner.post(URL, data=json.dumps({"runs": [make_run() for _ in range(1000)]}), content_type="application/json")
    assert r.status_code == 201, r.content[:300]
    assert len(r.json()["runs"]) == 1000


def test_duplicate_check_is_one_query_scoped_to_the_project(runner, make_run, project):
    runs = [make_run() for _ in range(5)]
    assert runner.post(URL, data=json.dumps({"runs": runs}), content_type="application/json").status_code == 201
    other = Project.objects.create(slug="other", name="Other")
    ids = [r["run_id"] for r in runs]
    with CaptureQueriesContext(connection) as captured:
        mine = stored_runs(project, ids + ["00000000-0000-4000-8000-000000000000"])
        theirs = stored_runs(other, ids)
    assert len(captured) == 2
    assert sorted(str(k) for k in mine) == sorted(ids) and theirs == {}
    stored = Run.objects.get(project=project, run_id=ids[0])
    assert mine[stored.run_id] == (stored.body_sha256, stored.id)
    if connection.vendor == "postgresql":
        assert "ANY(" in captured[0]["sql"]

"""POST /api/v1/runs: every answer of the wire contract, and nothing half-stored."""
import gzip
import json
import threading
import uuid

import pytest
from django.db import connection
from rest_framework.test import APIClient

from collector.models import ComputePlanEntry, Device, ModelVersion, Run

URL = "/api/v1/runs"


def post(client, body, **extra):
    return client.post(URL, data=json.dumps(body), content_type="application/json", **extra)


def test_single_run_is_stored_with_its_summary_and_catalogue_device(runner, make_run):
    run = make_run(predictions_ms=[10.0, 12.0, 11.0, 13.0, 100.0])
    r = post(runner, run)
    assert r.status_code == 201, r.content
    assert r.json()["status"] == "created" and r.json()["run_id"] == run["run_id"]
    stored = Run.objects.get(run_id=run["run_id"])
    assert stored.id == r.json()["id"]
    assert stored.prediction_count == 5
    assert stored.prediction_median_ms == 12.0
    assert stored.prediction_min_ms == 10.0
    assert stored.prediction_p90_ms == pytest.approx(65.2)
    assert stored.predictions_ms == [10.0, 12.0, 11.0, 13.0, 100.0]
    assert stored.device.name == "iPhone 14 Pro" and stored.device.chip == "A16 Bionic"
    assert stored.os_major == 18 and stored.load_ms == 1430.2
    assert stored.compute_plan.get().device == "neural_engine"


def test_batch_answers_one_entry_per_run(runner, make_run):
    runs = [make_run() for _ in range(3)]
    r = post(runner, {"runs": runs})
    assert r.status_code == 201
    body = r.json()
    assert body["created"] == 3 and body["duplicate"] == 0
    assert [e["run_id"] for e in body["runs"]] == [run["run_id"] for run in runs]
    assert Run.objects.count() == 3


def test_the_garbage_collector_runs_again_after_every_upload(runner, make_run, monkeypatch):
    """An upload pauses Python's cyclic collector while it parses and stores (collector.upload.collection_paused): it
    is paused during the store and running again after an upload stored, refused or failed."""
    import gc

    from collector import api

    seen = []
    store = api.store_runs
    monkeypatch.setattr(api, "store_runs", lambda *a: (seen.append(gc.isenabled()), store(*a))[1])
    assert post(runner, {"runs": [make_run()]}).status_code == 201
    assert seen == [False] and gc.isenabled()
    assert post(runner, {"runs": [make_run(compute_units="gpuOnly")]}).status_code == 400
    assert gc.isenabled()
    monkeypatch.setattr(api, "store_runs", lambda *a: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        post(runner, {"runs": [make_run()]})
    assert gc.isenabled()


def test_resend_is_a_duplicate_and_changes_nothing(runner, make_run):
    run = make_run()
    first = post(runner, run).json()
    again = post(runner, run)
    assert again.status_code == 200
    assert again.json() == {**first, "status": "duplicate"}
    # Key order and whitespace are not a change.
    reordered = json.dumps(dict(reversed(list(run.items()))), indent=2)
    assert runner.post(URL, data=reordered, content_type="application/json").status_code == 200
    assert Run.objects.count() == 1 and ComputePlanEntry.objects.count() == 1


def test_batch_mixing_new_and_stored_runs_is_created(runner, make_run):
    old = make_run()
    post(runner, old)
    r = post(runner, {"runs": [old, make_run()]})
    assert r.status_code == 201
    assert [e["status"] for e in r.json()["runs"]] == ["duplicate", "created"]


def test_changed_body_under_known_run_id_is_409_and_keeps_the_original(runner, make_run):
    run = make_run()
    post(runner, run)
    changed = dict(run, timings_ms={**run["timings_ms"], "load": 999.0})
    r = post(runner, {"runs": [make_run(), changed]})
    assert r.status_code == 409
    assert r.json()["run_ids"] == [run["run_id"]]
    assert Run.objects.count() == 1
    assert Run.objects.get().load_ms == 1430.2


def test_batch_with_one_bad_run_stores_nothing_and_names_index_and_field(runner, make_run):
    runs = [make_run(), make_run(compute_units="gpu"), make_run()]
    r = post(runner, {"runs": runs})
    assert r.status_code == 400
    errors = r.json()["errors"]
    assert list(errors) == ["1"]
    assert errors["1"][0]["field"] == "compute_units"
    assert Run.objects.count() == 0 and ModelVersion.objects.count() == 0


@pytest.mark.parametrize(
    "change, field",
    [
        ({"timings_ms": {"load": -1.0, "first_prediction": 3.0}}, "timings_ms.load"),
        ({"predictions_ms": [1.0, -0.5]}, "predictions_ms.1"),
        ({"peak_memory_mb": "812"}, "peak_memory_mb"),
        ({"compute_units": "neuralEngine"}, "compute_units"),
        ({"status": "crash"}, "failure"),
        ({"status": "crash", "failure": {"stage": "warmup", "message": "x"}}, "failure.stage"),
        ({"failure": {"stage": "load", "message": "x"}}, "failure"),
        ({"timings_ms": {"load": 3.0}}, "timings_ms.first_prediction"),
        ({"predictions_ms": [1.0] * 10_001}, "predictions_ms"),
        ({"app_build": "x" * 65}, "app_build"),
        ({"model": {"name": "m" * 201, "version": "1"}}, "model.name"),
        ({"model": {"name": "m", "version": "1", "sha256": "zz"}}, "model.sha256"),
        ({"device": {"identifier": "<script>", "os_version": "18.1"}}, "device.identifier"),
        ({"device": {"identifier": "iPhone15,2", "os_version": "eighteen"}}, "device.os_version"),
        ({"started_at": "2026-11-20T10:00:00"}, "started_at"),
        ({"run_id": "not-a-uuid"}, "run_id"),
        ({"source": "beta"}, "source"),
        ({"load_kind": "warm"}, "load_kind"),
        ({"timing_ms": {}}, "timing_ms"),
        ({"compute_plan": [{"op": "c", "type": "conv", "device": "ane"}]}, "compute_plan.0.device"),
        # NUL cannot be stored in PostgreSQL text; control characters have no place in a one-line label.
        ({"variant": "a\u0000b"}, "variant"),
        ({"app_build": "5.1\n(12)"}, "app_build"),
        ({"model": {"name": "m\u0000", "version": "1"}}, "model.name"),
        ({"status": "crash", "failure": {"stage": "load", "message": "x\u0000"}}, "failure.message"),
        ({"compute_plan": [{"op": "a\u0000", "type": "conv", "device": "cpu"}]}, "compute_plan.0.op"),
        ({"model": {"name": "m", "version": "1", "size_bytes": 10**30}}, "model.size_bytes"),
    ],
)
def test_invalid_run_is_400_naming_the_field(runner, make_run, change, field):
    r = post(runner, make_run(**change))
    assert r.status_code == 400, r.content
    fields = [e["field"] for e in r.json()["errors"]["0"]]
    assert field in fields
    assert Run.objects.count() == 0


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_times_are_refused(runner, make_run, literal):
    body = json.dumps(make_run(predictions_ms=[1.0, 2.0])).replace("[1.0, 2.0]", f"[1.0, {literal}]")
    r = runner.post(URL, data=body, content_type="application/json")
    assert r.status_code == 400
    assert r.json()["errors"]["0"][0]["field"] == "predictions_ms.1"


@pytest.mark.parametrize("body", [b"", b"{not json", b"[]", b'"run"', b'{"runs": []}', b'{"runs": [], "x": 1}',
                                  b"\xff\xfe", b"[" * 100_000])
def test_malformed_bodies_are_400(runner, body):
    r = runner.post(URL, data=body, content_type="application/json")
    assert r.status_code == 400
    assert r.json()["detail"]


def test_unknown_device_is_stored_as_unknown(runner, make_run):
    r = post(runner, make_run(device={"identifier": "iPhone99,9", "os_version": "27.0"}))
    assert r.status_code == 201
    device = Device.objects.get(identifier="iPhone99,9")
    assert not device.known and device.display_name == "iPhone99,9 (unknown)"


def test_changed_model_hash_under_same_version_is_400(runner, make_run):
    post(runner, make_run())
    model = {**make_run()["model"], "sha256": "f" * 64}
    r = post(runner, make_run(model=model))
    assert r.status_code == 400
    assert r.json()["errors"]["0"][0]["field"] == "model.sha256"


def test_missing_bad_and_revoked_tokens_are_401(client_for, runner_token, make_run, project):
    assert post(client_for(), make_run()).status_code == 401
    assert post(client_for("pb_wrong"), make_run()).status_code == 401
    from django.core.management import call_command

    call_command("revoke_runner_token", project.slug, "lab-mac-1")
    assert post(client_for(runner_token), make_run()).status_code == 401
    assert Run.objects.count() == 0


def test_policy_token_cannot_upload_or_read_runs(client_for, policy_token, make_run):
    client = client_for(policy_token)
    assert post(client, make_run()).status_code == 403
    assert client.get(URL).status_code == 403


def test_body_over_the_limit_is_413(runner, make_run, settings):
    settings.PERFBOARD = {**settings.PERFBOARD, "MAX_UPLOAD_BYTES": 2000}
    r = post(runner, make_run(predictions_ms=[1.0] * 500))
    assert r.status_code == 413
    bomb = gzip.compress(json.dumps(make_run(predictions_ms=[1.0] * 5000)).encode())
    assert len(bomb) < 2000
    r = runner.post(URL, data=bomb, content_type="application/json", HTTP_CONTENT_ENCODING="gzip")
    assert r.status_code == 413
    assert Run.objects.count() == 0


def test_gzip_body_is_accepted(runner, make_run):
    body = gzip.compress(json.dumps(make_run()).encode())
    r = runner.post(URL, data=body, content_type="application/json", HTTP_CONTENT_ENCODING="gzip")
    assert r.status_code == 201


def test_more_than_1000_runs_is_413(runner, make_run):
    r = post(runner, {"runs": [make_run() for _ in range(1001)]})
    assert r.status_code == 413
    assert r.json()["errors"]["body"][0]["field"] == "runs"


def test_same_run_id_twice_in_one_batch(runner, make_run):
    run = make_run()
    r = post(runner, {"runs": [run, run]})
    assert r.status_code == 201
    assert [e["status"] for e in r.json()["runs"]] == ["created", "duplicate"]
    changed = make_run(run_id=str(uuid.uuid4()))
    r = post(runner, {"runs": [changed, dict(changed, compute_units="cpuOnly")]})
    assert r.status_code == 400 and r.json()["errors"]["1"][0]["field"] == "run_id"


@pytest.mark.django_db(transaction=True)
def test_concurrent_duplicate_posts_store_one_row(project, runner_token, make_run):
    run = make_run()
    answers = []
    barrier = threading.Barrier(2)

    def send():
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {runner_token}")
        barrier.wait()
        answers.append(post(client, {"runs": [run]}).status_code)
        connection.close()

    threads = [threading.Thread(target=send) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(answers) == [200, 201]
    assert Run.objects.filter(run_id=run["run_id"]).count() == 1

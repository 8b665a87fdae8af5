"""Profiling jobs with the database: upload -> Linux steps -> lint, failures by stage, the macOS branch
with recorded data, pages and JSON, and a real Celery worker when a broker is configured."""
from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path

import pytest

from collector.models import ComputePlanEntry, ModelVersion, Project, Run
from profiling import device
from profiling.errors import UploadRejected
from profiling.jobs import create_job, record_measurements, run_macos_steps
from profiling.models import Artifact, ProfilingJob

DATA = Path(__file__).parent / "data"


@pytest.fixture(autouse=True)
def jobs_run_in_process(request, monkeypatch):
    """Run enqueued jobs right away, whatever the broker; the celery_worker test uses the real queue.

    With CELERY_BROKER_URL set (CI), apply_async would only queue the job and nothing here would run it.
    """
    if request.node.get_closest_marker("celery_worker"):
        return
    from profiling import jobs

    monkeypatch.setattr(jobs, "enqueue_job", lambda job: jobs.run_job(job.pk))


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return Path(settings.MEDIA_ROOT)


@pytest.fixture
def acme(db):
    return Project.objects.create(slug="acme-prof", name="Acme profiling")


@pytest.fixture
def sq_int8_zip(zoo, helpers, tmp_path):
    return helpers.zip_dir(zoo.sq_int8, tmp_path / "sq_int8.mlpackage.zip")


@pytest.fixture(scope="module")
def torch_files(tmp_path_factory, zoo):
    import torch

    d = tmp_path_factory.mktemp("jobtorch")
    torch.jit.save(torch.jit.trace(zoo.sq_net, zoo.example), d / "sq.pt")
    return d


def _run(job_fn, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        job = job_fn()
    job.refresh_from_db()
    return job


def _files(root: Path):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_coreml_upload_is_linted_and_needs_a_mac(acme, media, sq_int8_zip, django_capture_on_commit_callbacks):
    job = _run(lambda: create_job(acme, open(sq_int8_zip, "rb"), "face.mlpackage.zip", model_name="face",
                                  version="3.2.0"), django_capture_on_commit_callbacks)
    assert job.status == ProfilingJob.SUCCEEDED, job.error_message
    assert job.progress == 1.0
    art = job.artifacts.get()
    assert art.role == Artifact.INPUT and art.kind == "mlpackage"
    assert art.model_version == job.model_version == ModelVersion.objects.get(project=acme, name="face", version="3.2.0")
    assert art.lint["has_dynamic_weight"] and art.dynamic_weight_count == 3
    assert art.lint["source"]["path"] == "face.mlpackage"  # no server paths
    assert (media / art.path / "Manifest.json").exists()
    if sys.platform != "darwin":
        assert job.macos_status == ProfilingJob.MAC_NEEDS_WORKER
        assert "needs a macOS worker" in job.macos_message


def test_torchscript_converted_then_compressed(acme, media, torch_files, django_capture_on_commit_callbacks):
    job = _run(lambda: create_job(acme, open(torch_files / "sq.pt", "rb"), "sq.pt", model_name="sq", version="1.0",
                                  input_shapes=[{"name": "x", "shape": [1, 3, 16, 16]}], compression="int8",
                                  deployment_target="iOS17"), django_capture_on_commit_callbacks)
    assert job.status == ProfilingJob.SUCCEEDED, job.error_message
    roles = {a.role: a for a in job.artifacts.all()}
    assert set(roles) == {"input", "converted", "compressed"}
    # fp16 conversion folds the pow; compressing that with coremltools keeps every weight constant.
    assert roles["converted"].lint["findings"] == [] and "pow" not in roles["converted"].lint["ops"]
    assert roles["compressed"].lint["findings"] == []
    assert roles["compressed"].lint["compressed_fraction"] > 0.9
    assert roles["compressed"].model_version.version == "1.0+int8"
    assert roles["input"].lint is None


def test_conversion_failure_stores_stage_and_message(acme, media, torch_files, django_capture_on_commit_callbacks):
    job = _run(lambda: create_job(acme, open(torch_files / "sq.pt", "rb"), "sq.pt", model_name="sq", version="bad",
                                  input_shapes=[[1, 3]]), django_capture_on_commit_callbacks)
    assert job.status == ProfilingJob.FAILED
    assert job.error_stage == "convert"
    assert job.error_message and "Traceback" not in job.error_message
    assert "conv" in job.error_message


def test_compress_failure_keeps_the_lint(acme, media, zoo, helpers, tmp_path, django_capture_on_commit_callbacks):
    bare = helpers.bare_mlmodel_copy(zoo.sq_int8, tmp_path)  # an ML program without its weights
    job = _run(lambda: create_job(acme, open(bare, "rb"), "model.mlmodel", model_name="bare", version="1",
                                  compression="palettize4"), django_capture_on_commit_callbacks)
    assert job.status == ProfilingJob.FAILED and job.error_stage == "compress"
    assert "Traceback" not in job.error_message
    assert job.artifacts.get(role="input").lint["has_dynamic_weight"]


@pytest.mark.parametrize("name, data, match", [
    ("model.zip", b"PK\x03\x04 truncated", "corrupt"),
    ("photo.png", b"\x89PNG\r\n", "unsupported file type"),
])
def test_refused_upload_leaves_nothing(acme, media, name, data, match):
    with pytest.raises(UploadRejected, match=match):
        create_job(acme, io.BytesIO(data), name, model_name="m", version="1")
    assert ProfilingJob.objects.count() == 0 and not ModelVersion.objects.filter(name="m").exists()
    assert _files(media) == []


def test_bad_options_are_refused_before_anything_is_stored(acme, media, zoo, helpers, tmp_path):
    bare = helpers.bare_mlmodel_copy(zoo.sq_int8, tmp_path)
    with pytest.raises(UploadRejected, match="deployment target"):
        create_job(acme, open(bare, "rb"), "model.mlmodel", model_name="m", version="1", deployment_target="iOS9")
    assert ProfilingJob.objects.count() == 0 and _files(media) == []


@pytest.mark.skipif(sys.platform == "darwin", reason="checks the Linux side of the capability test")
def test_capability_detection_on_linux():
    available, why = device.capability()
    assert not available
    assert why.startswith("needs a macOS worker") and "_MLModelProxy" in why


def _recorded():
    data = json.loads((DATA / "macos_measurement.json").read_text())
    data.pop("_comment")
    return data


def test_recorded_macos_measurements_become_runs(acme, media, sq_int8_zip, django_capture_on_commit_callbacks):
    job = _run(lambda: create_job(acme, open(sq_int8_zip, "rb"), "face.zip", model_name="face", version="4.0"),
               django_capture_on_commit_callbacks)
    job = run_macos_steps(job.pk, measure=lambda path: _recorded())
    assert job.macos_status == ProfilingJob.MAC_DONE and job.macos_message == "4 runs recorded"
    runs = Run.objects.filter(model_version=job.model_version)
    assert sorted(runs.values_list("compute_units", flat=True)) == ["all", "cpuAndGPU", "cpuAndNeuralEngine", "cpuOnly"]
    ne = runs.get(compute_units="cpuAndNeuralEngine")
    assert ne.load_ms == 310.0 and ne.first_prediction_ms == 6.2 and ne.prediction_count == 4
    assert ne.has_compute_plan and ComputePlanEntry.objects.filter(run=ne, device="cpu").count() == 2
    failed = runs.get(compute_units="all")
    assert failed.status == "error" and failed.failure_stage == "load"
    assert runs.get(compute_units="cpuOnly").device.identifier == "Mac15,3"
    # Recording the same measurement again stores nothing new (deterministic run ids).
    assert record_measurements(job, job.artifacts.get(), _recorded()) == 0


@pytest.fixture
def member_client(client, acme, django_user_model):
    user = django_user_model.objects.create_user("ana", password="pw")
    acme.members.add(user)
    client.force_login(user)
    return client


def test_pages_and_json(member_client, acme, media, zoo, helpers, tmp_path, django_capture_on_commit_callbacks):
    z = helpers.zip_dir(zoo.sq_int8, tmp_path / "sq.zip")
    with django_capture_on_commit_callbacks(execute=True):
        resp = member_client.post("/profiling/", {
            "project": acme.pk, "model_name": "face", "version": "5.0", "file": open(z, "rb"),
            "compression": "", "deployment_target": "iOS17",
        })
    assert resp.status_code == 302, resp.content.decode()[:2000]
    job = ProfilingJob.objects.get()
    run_macos_steps(job.pk, measure=lambda path: _recorded())
    page = member_client.get(resp["Location"])
    assert page.status_code == 200
    html = page.content.decode()
    assert "constexpr_affine_dequantize → pow → conv" in html
    assert "ops off the Neural Engine" in html  # placement from the recorded compute plans
    payload = member_client.get(f"/profiling/jobs/{job.pk}.json").json()
    assert payload["status"] == "succeeded" and payload["progress"] == 1.0
    art = payload["artifacts"][0]
    lint = member_client.get(art["lint_url"]).json()
    assert {"ops", "weights", "compressed_fraction", "findings"} <= set(lint)
    list_page = member_client.get("/profiling/")
    assert list_page.status_code == 200 and "face" in list_page.content.decode()


def test_upload_form_refusal_is_shown(member_client, acme, media):
    resp = member_client.post("/profiling/", {"project": acme.pk, "model_name": "m", "version": "1",
                                              "file": io.BytesIO(b"not a model"), "compression": ""})
    assert resp.status_code == 400
    assert "upload refused" in resp.content.decode()
    assert ProfilingJob.objects.count() == 0
    resp = member_client.post("/profiling/", {"project": "abc", "model_name": "m", "version": "1"})
    assert resp.status_code == 400 and "choose a project" in resp.content.decode()


def test_diff_view(member_client, acme, media, zoo, helpers, tmp_path, django_capture_on_commit_callbacks):
    jobs = []
    for name, pkg in (("fp16", zoo.sq_fp16), ("int8", zoo.sq_int8)):
        z = helpers.zip_dir(pkg, tmp_path / f"{name}.zip")
        jobs.append(_run(lambda: create_job(acme, open(z, "rb"), f"{name}.zip", model_name="sq", version=name),
                         django_capture_on_commit_callbacks))
    a, b = (j.artifacts.get() for j in jobs)
    data = member_client.get(f"/profiling/diff?a={a.pk}&b={b.pk}&format=json").json()
    pow_row = next(r for r in data["ops_changed"] if r["key"] == "pow")
    assert (pow_row["a"], pow_row["b"]) == (0, 3)
    assert len(data["only_in_b"]) == 3 and data["only_in_a"] == []
    assert data["has_dynamic_weight"] == {"a": False, "b": True}
    html = member_client.get(f"/profiling/diff?a={a.pk}&b={b.pk}").content.decode()
    assert "Findings only in B" in html


def test_other_projects_jobs_are_hidden(client, django_user_model, acme, media, zoo, helpers, tmp_path,
                                        django_capture_on_commit_callbacks):
    job = _run(lambda: create_job(acme, open(helpers.bare_mlmodel_copy(zoo.sq_int8, tmp_path), "rb"), "m.mlmodel",
                                  model_name="m", version="1"), django_capture_on_commit_callbacks)
    outsider = django_user_model.objects.create_user("eve", password="pw")
    client.force_login(outsider)
    assert client.get(f"/profiling/jobs/{job.pk}").status_code == 404
    assert client.get(f"/profiling/jobs/{job.pk}.json").status_code == 404
    art = job.artifacts.get()
    assert client.get(f"/profiling/artifacts/{art.pk}/lint.json").status_code == 404


@pytest.mark.celery_worker
def test_job_runs_on_a_real_celery_worker(celery_worker, settings, tmp_path, zoo, helpers):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    project = Project.objects.create(slug="celery-prof", name="Celery profiling")
    z = helpers.zip_dir(zoo.sq_int8, tmp_path / "sq.zip")
    job = create_job(project, open(z, "rb"), "sq.zip", model_name="sq", version="w1")  # enqueued on commit
    import time

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.finished:
            break
        time.sleep(0.5)
    assert job.status == ProfilingJob.SUCCEEDED, (job.status, job.error_message)
    assert job.task_id
    assert job.artifacts.get().lint["has_dynamic_weight"]


def test_rerun_starts_from_the_input_and_delete_removes_files(acme, media, torch_files, django_capture_on_commit_callbacks):
    from profiling.jobs import run_job

    job = _run(lambda: create_job(acme, open(torch_files / "sq.pt", "rb"), "sq.pt", model_name="sq", version="rr",
                                  input_shapes=[[1, 3, 16, 16]]), django_capture_on_commit_callbacks)
    assert job.status == ProfilingJob.SUCCEEDED
    # Simulate a redelivered task: the job is marked running again and re-run.
    ProfilingJob.objects.filter(pk=job.pk).update(status=ProfilingJob.RUNNING)
    run_job(job.pk)
    assert sorted(job.artifacts.values_list("role", flat=True)) == ["converted", "input"]
    job_dir = media / job.relative_dir
    assert job_dir.exists()
    job.delete()
    assert not job_dir.exists()

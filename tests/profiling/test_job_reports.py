"""Issue 16 on the job side: the fix as a job (users' fp16 package -> int8 without dynamic_weight), before/after,
grouped findings, run-time memory on the pages, failures that name the op and what to try, no server paths, and
job folders keyed by a UUID."""
from __future__ import annotations

import threading
from html import escape as html_escape

import pytest

from profiling.conversion_hints import conversion_hint
from profiling.jobs import NO_WEIGHTS, create_fix_job, create_job
from profiling.jobs import enqueue_job as queue_for_real  # jobs_run_in_process replaces it in the other tests
from profiling.models import Artifact, ProfilingJob
from tests.profiling.test_jobs import _run, acme, jobs_run_in_process, media, member_client  # noqa: F401 - fixtures

# The message coremltools 9.0 gave for the users' int8 path before profiling.coremltools_fixes.
RFFTN_FAILURE = ('ValueError: Unable to lower complex dialect op   %complex_rfftn_0: (1, 8, 16, 9, complex64)(Tensor) '
                 '= complex_rfftn(data=%out.3, dims=[np.int32(-2), np.int32(-1)], norm="ortho", name="complex_rfftn_0")')


def _upload(acme, package, name, version, helpers, tmp_path, capture, **options):  # noqa: F811
    z = helpers.zip_dir(package, tmp_path / f"{name}.zip")
    return _run(lambda: create_job(acme, open(z, "rb"), f"{name}.zip", model_name="problem3", version=version,
                                   **options), capture)


def test_fix_job_turns_the_users_fp16_package_into_int8_without_dynamic_weight(
        member_client, acme, media, problem3, helpers, tmp_path, django_capture_on_commit_callbacks):  # noqa: F811
    flagged = _upload(acme, problem3["paths"]["int8"], "problem3_int8", "int8", helpers, tmp_path,
                      django_capture_on_commit_callbacks)
    assert flagged.artifacts.get().lint["has_dynamic_weight"]
    page = member_client.get(f"/profiling/jobs/{flagged.pk}").content.decode()
    assert "No fp16 package of this model" in page  # nothing to compress yet
    _upload(acme, problem3["paths"]["fp16"], "problem3_fp16", "fp16", helpers, tmp_path,
            django_capture_on_commit_callbacks)
    page = member_client.get(f"/profiling/jobs/{flagged.pk}").content.decode()
    assert "Start the fix" in page
    with django_capture_on_commit_callbacks(execute=True):
        resp = member_client.post(f"/profiling/jobs/{flagged.pk}/fix", {"method": "int8_asymmetric"})
    assert resp.status_code == 302
    fix = ProfilingJob.objects.get(fix_of=flagged)
    assert fix.status == ProfilingJob.SUCCEEDED, fix.error_message
    after = fix.artifacts.get(role=Artifact.COMPRESSED).lint
    assert not after["has_dynamic_weight"] and "pow" not in after["ops"]
    assert after["weights"].get("constexpr_affine_dequantize") and after["compressed_fraction"] > 0.9
    before = flagged.artifacts.get().lint
    assert after["runtime_bytes_total"] < before["runtime_bytes_total"] / 1.9
    html = member_client.get(resp["Location"]).content.decode()
    assert "Before (job" in html and "weight memory at run time" in html


def test_fix_without_an_fp16_package_is_refused_with_what_to_upload(acme, media, zoo, helpers, tmp_path,  # noqa: F811
                                                                    django_capture_on_commit_callbacks):
    job = _upload(acme, zoo.sq_int8, "sq_int8", "1", helpers, tmp_path, django_capture_on_commit_callbacks)
    with pytest.raises(Exception, match="upload the fp16 .mlpackage"):
        create_fix_job(job, "int8")
    assert ProfilingJob.objects.count() == 1


def test_findings_are_grouped_by_rule_with_the_advice_once(member_client, acme, media, problem3, helpers,  # noqa: F811
                                                           tmp_path, django_capture_on_commit_callbacks):
    job = _upload(acme, problem3["paths"]["int8"], "problem3_int8", "int8", helpers, tmp_path,
                  django_capture_on_commit_callbacks)
    html = member_client.get(f"/profiling/jobs/{job.pk}").content.decode()
    lint = job.artifacts.get().lint
    advice = html_escape(lint["findings"][0]["advice"][:80])
    assert html.count(advice) == 1
    assert f"constexpr_affine_dequantize → pow → conv</code> × {problem3['convs']}" in html
    assert 'id="rule-dynamic_weight"' in html and "def folded(conv)" in html
    assert "Weight memory at run time" in html and "Op chains that materialise the most" in html


def test_pow_rows_of_the_placement_link_their_finding(problem3):
    from profiling.lint import lint_path
    from profiling.placement import placement_summary

    lint = lint_path(problem3["paths"]["int8"])
    f = next(f for f in lint["findings"] if f["rule"] == "dynamic_weight")
    pow_op = f["chain_ops"][1]
    rows = [{"device_name": "iPhone", "compute_units": "all", "op": pow_op, "op_type": "pow", "device": "cpu",
             "estimated_cost": 0.1}]
    [summary] = placement_summary(rows, [lint])
    assert summary["off_neural_engine"][0]["finding"]["op"] == f["op"]


def test_compressing_an_upload_without_weights_says_so_without_server_paths(acme, media, zoo, helpers, tmp_path,  # noqa: F811
                                                                            django_capture_on_commit_callbacks):
    bare = helpers.bare_mlmodel_copy(zoo.sq_int8, tmp_path)
    job = _run(lambda: create_job(acme, open(bare, "rb"), "model.mlmodel", model_name="bare", version="1",
                                  compression="int8"), django_capture_on_commit_callbacks)
    assert job.status == ProfilingJob.FAILED and job.error_stage == "compress"
    assert job.error_message == NO_WEIGHTS
    assert str(media) not in job.error_message


def test_server_paths_are_cut_from_stored_messages(acme, media, settings):  # noqa: F811
    from profiling.jobs import public_message

    message = f"RuntimeError: Could not open {media}/profiling/jobs/17/input/m.mlpackage/weights/weight.bin"
    assert public_message(message) == "RuntimeError: Could not open weight.bin"


def test_conversion_failure_names_the_op_and_what_to_try(member_client, acme, media, zoo, helpers, tmp_path,  # noqa: F811
                                                         django_capture_on_commit_callbacks):
    hint = conversion_hint(RFFTN_FAILURE)
    assert hint["op"] == "complex_rfftn" and "coremltools.optimize.coreml" in hint["try"]
    assert conversion_hint("TypeError: only 0-dimensional arrays can be converted to Python scalars")["try"].startswith(
        "coremltools 9.0 does not support numpy 2.4")
    job = _upload(acme, zoo.sq_int8, "sq_int8", "1", helpers, tmp_path, django_capture_on_commit_callbacks)
    ProfilingJob.objects.filter(pk=job.pk).update(status=ProfilingJob.FAILED, error_stage="convert",
                                                  error_message=RFFTN_FAILURE)
    html = member_client.get(f"/profiling/jobs/{job.pk}").content.decode()
    assert "on op <code>complex_rfftn</code>" in html and "What to try:" in html
    payload = member_client.get(f"/profiling/jobs/{job.pk}.json").json()
    assert payload["error"]["hint"]["op"] == "complex_rfftn"


def test_job_folders_are_keyed_by_uuid_not_the_database_id(acme, media, zoo, helpers, tmp_path,  # noqa: F811
                                                           django_capture_on_commit_callbacks):
    jobs = [_upload(acme, zoo.sq_int8, f"sq{i}", str(i), helpers, tmp_path, django_capture_on_commit_callbacks)
            for i in range(2)]
    for job in jobs:
        assert job.relative_dir == f"profiling/jobs/{job.storage_key}"
        assert job.artifacts.get().path.startswith(job.relative_dir + "/")
    # a job of another database with the same id would have another key: deleting one leaves the other's files
    jobs[0].delete()
    assert not (media / jobs[0].relative_dir).exists() and (media / jobs[1].relative_dir).exists()


@pytest.mark.django_db(transaction=True)
def test_embedded_mode_runs_the_job_in_the_background_with_stage_and_progress(settings, tmp_path, zoo, helpers,
                                                                               monkeypatch):
    from perfboard.celery import runs_in_process
    from profiling import background, jobs
    from collector.models import Project

    if not runs_in_process():
        pytest.skip("a broker is configured: jobs go to Celery (test_job_runs_on_a_real_celery_worker)")
    settings.MEDIA_ROOT = str(tmp_path / "media")
    project = Project.objects.create(slug="embedded", name="Embedded")
    seen, futures = [], []
    progress = jobs._progress

    def recording_progress(job, stage, fraction, message):
        progress(job, stage, fraction, message)
        seen.append((stage, fraction))

    monkeypatch.setattr(jobs, "_progress", recording_progress)
    monkeypatch.setattr(jobs, "enqueue_job", queue_for_real)
    start, gate = background.start, threading.Event()

    def gated_start(job_id, run):  # holds the job until the request's view of it is checked
        task_id, future = start(job_id, lambda pk: gate.wait(60) and run(pk))
        futures.append(future)
        return task_id, future

    monkeypatch.setattr(background, "start", gated_start)
    job = create_job(project, open(helpers.zip_dir(zoo.sq_int8, tmp_path / "sq.zip"), "rb"), "sq.zip",
                     model_name="sq", version="bg")
    job.refresh_from_db()
    assert job.status == ProfilingJob.QUEUED and job.task_id.startswith("embedded-")  # the request returned
    gate.set()
    futures[0].result(timeout=120)
    job.refresh_from_db()
    assert job.status == ProfilingJob.SUCCEEDED and job.progress == 1.0
    assert [s for s, _ in seen] == ["lint", "macos"] and [f for _, f in seen] == sorted(f for _, f in seen)

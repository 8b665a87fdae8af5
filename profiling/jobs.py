"""Profiling jobs: create from an upload, run the Linux steps, hand device steps to a Mac.

Tasks (profiling.tasks) are thin wrappers around run_job / run_macos_steps so the
same code runs eagerly (embedded set-up), on a Linux worker and on a macOS worker.
"""
from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from collector.models import ModelVersion
from perfboard.conf import perfboard_setting, upload_limits

from . import device
from .compress import METHODS
from .convert import TARGETS, InputSpec, error_message
from .errors import ConversionError, ModelInputError, UploadRejected
from .models import Artifact, ProfilingJob
from .uploads import MLMODEL, MLPACKAGE, store_upload

log = logging.getLogger(__name__)
RUN_NAMESPACE = uuid.UUID("6f1d1c1e-4a8e-4b43-9d55-3f0c2b7f5e11")  # run_ids of device measurements


def media_path(relative: str) -> str:
    return os.path.join(settings.MEDIA_ROOT, relative)


def macos_workers_enabled() -> bool:
    """A macOS worker consumes queue 'macos' (PERFBOARD['PROFILING_MACOS_WORKERS'])."""
    return bool(perfboard_setting("PROFILING_MACOS_WORKERS"))


def _validate_options(input_kind, input_shapes, deployment_target, compression):
    if deployment_target not in TARGETS:
        raise UploadRejected(f"unknown deployment target {deployment_target!r}; choose one of {', '.join(TARGETS)}")
    if compression and compression not in METHODS:
        raise UploadRejected(f"unknown compression {compression!r}; choose one of {', '.join(METHODS)}")
    try:
        shapes = [InputSpec.parse(v, i) for i, v in enumerate(input_shapes or [])]
    except (ConversionError, ValueError, TypeError, KeyError) as exc:
        raise UploadRejected(f"invalid input shapes: {getattr(exc, 'message', exc)}") from None
    if input_kind == "torchscript" and not shapes:
        raise UploadRejected("a TorchScript model needs its input shapes, e.g. [[1, 3, 224, 224]]")
    return [{"name": s.name, "shape": list(s.shape)} for s in shapes]


def create_job(project, fileobj, filename, *, model_name, version, input_shapes=None, deployment_target="iOS17",
               compression="", user=None, enqueue=True) -> ProfilingJob:
    """Store the upload (refusing hostile files), create the job and its input artifact, enqueue it.

    Raises UploadRejected; on refusal nothing is left on disk or in the database.
    """
    staging_root = media_path("profiling/staging")
    os.makedirs(staging_root, exist_ok=True)
    staging = tempfile.mkdtemp(dir=staging_root)
    try:
        stored = store_upload(fileobj, filename, staging, limits=upload_limits())
        shapes = _validate_options(stored.kind, input_shapes, deployment_target, compression)
        with transaction.atomic():
            mv, _ = ModelVersion.objects.get_or_create(
                project=project, name=model_name, version=version,
                defaults={"format": "mlprogram" if stored.kind != MLMODEL else "", "size_bytes": stored.size},
            )
            job = ProfilingJob.objects.create(
                project=project, model_version=mv, created_by=user if getattr(user, "pk", None) else None,
                input_kind=stored.kind, input_name=os.path.basename(filename)[:255], input_shapes=shapes,
                deployment_target=deployment_target, compression=compression or "",
            )
            rel = f"{job.relative_dir}/input/{os.path.basename(stored.path)}"
            os.makedirs(os.path.dirname(media_path(rel)), exist_ok=True)
            shutil.move(stored.path, media_path(rel))
            try:
                Artifact.objects.create(job=job, role=Artifact.INPUT, kind=stored.kind, path=rel,
                                        size_bytes=stored.size, sha256=stored.sha256, model_version=mv)
            except Exception:
                shutil.rmtree(media_path(job.relative_dir), ignore_errors=True)
                raise
            if enqueue:
                transaction.on_commit(lambda: enqueue_job(job))
        return job
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def fp16_sources(job) -> list[Artifact]:
    """Core ML artifacts of the job's model (this job's, or other jobs' of the same model in the project) that
    store their weights uncompressed: what a fix job can compress. This job's own come first."""
    candidates = Artifact.objects.filter(
        job__project=job.project, job__model_version__name=job.model_version.name, kind=MLPACKAGE,
    ).exclude(lint=None).select_related("job").order_by("-job_id", "id")
    found = [a for a in candidates
             if not any(k.startswith("constexpr_") for k in (a.lint.get("weights") or {}))
             and not a.lint.get("has_dynamic_weight") and a.lint.get("source", {}).get("weights_present")]
    return sorted(found, key=lambda a: a.job_id != job.pk)


def create_fix_job(job, method, *, source=None, user=None, enqueue=True) -> ProfilingJob:
    """A job that compresses an fp16 artifact of the model with coremltools.optimize.coreml (``method``), to
    replace a package whose weights are transformed at run time (dynamic_weight). Raises UploadRejected."""
    if method not in METHODS:
        raise UploadRejected(f"unknown compression {method!r}; choose one of {', '.join(METHODS)}")
    sources = fp16_sources(job)
    if source is None:
        if not sources:
            raise UploadRejected("no fp16 package of this model to compress: upload the fp16 .mlpackage (zipped) or "
                                 "the PyTorch model, then offer the fix again")
        source = sources[0]
    elif source.pk not in {a.pk for a in sources}:
        raise UploadRejected("that artifact is not an fp16 package of this model with its weights")
    with transaction.atomic():
        fix = ProfilingJob.objects.create(
            project=job.project, model_version=job.model_version, created_by=user if getattr(user, "pk", None) else None,
            input_kind=source.kind, input_name=os.path.basename(source.path)[:255], input_shapes=job.input_shapes,
            deployment_target=job.deployment_target, compression=method, fix_of=job,
        )
        rel = f"{fix.relative_dir}/input/{os.path.basename(source.path)}"
        os.makedirs(os.path.dirname(media_path(rel)), exist_ok=True)
        try:
            copy = shutil.copytree if os.path.isdir(media_path(source.path)) else shutil.copy2
            copy(media_path(source.path), media_path(rel))
            Artifact.objects.create(job=fix, role=Artifact.INPUT, kind=source.kind, label=source.label, path=rel,
                                    size_bytes=source.size_bytes, sha256=source.sha256,
                                    model_version=source.model_version or job.model_version)
        except Exception:
            shutil.rmtree(media_path(fix.relative_dir), ignore_errors=True)
            raise
        if enqueue:
            transaction.on_commit(lambda: enqueue_job(fix))
    return fix


def before_after(fix) -> dict | None:
    """What the fix changed: the original job's flagged artifact (before) against the fix's compressed one."""
    from .diff import diff_lints

    if fix.fix_of_id is None:
        return None
    linted = [a for a in fix.fix_of.artifacts.order_by("id") if a.lint]
    before = next((a for a in linted if a.lint.get("has_dynamic_weight")), linted[-1] if linted else None)
    after = fix.artifacts.filter(role=Artifact.COMPRESSED).exclude(lint=None).first()
    if before is None or after is None:
        return None
    return {"before": before, "after": after, "diff": diff_lints(before.lint, after.lint)}


NOT_QUEUED_PREFIX = "could not queue:"
NOT_QUEUED = NOT_QUEUED_PREFIX + " {error}; it will be retried"  # the progress message of a job waiting for that


def enqueue_job(job: ProfilingJob) -> bool:
    """Queue the job's task (embedded, without a broker: start it in a background thread, profiling.background)
    and record its id; whether it was queued.

    When the broker cannot be reached the job stays `queued` without a task id, saying so in its progress message,
    and `requeue_unqueued` (Celery beat) queues it again once the broker is back."""
    from perfboard.celery import publish, runs_in_process

    from .tasks import run_profiling_job

    if runs_in_process():  # embedded: in a background thread, not inside the upload request
        from . import background

        task_id, _ = background.start(job.pk, run_job)
        ProfilingJob.objects.filter(pk=job.pk, task_id="").update(task_id=task_id)
        return True
    sent = publish(run_profiling_job, args=[job.pk])
    if not sent:
        ProfilingJob.objects.filter(pk=job.pk, status=ProfilingJob.QUEUED, task_id="").update(
            progress_message=NOT_QUEUED.format(error=sent.error)[:255])
        return False
    ProfilingJob.objects.filter(pk=job.pk, task_id="").update(task_id=sent.task_id)
    ProfilingJob.objects.filter(pk=job.pk, status=ProfilingJob.QUEUED,
                                progress_message__startswith=NOT_QUEUED_PREFIX).update(progress_message="")
    return True


def requeue_unqueued(older_than: float | None = None) -> int:
    """Queue again the jobs still `queued` without a task id (their queueing failed: broker down) at least
    ``older_than`` seconds (PERFBOARD["PROFILING_REQUEUE_AFTER_SECONDS"]) after their upload; returns how many were
    queued. Stops at the first failure: the broker is still down, and the next run tries again. A job that has a task
    id is left alone (its task is in the queue or running; a second one would run it twice)."""
    if older_than is None:
        older_than = float(perfboard_setting("PROFILING_REQUEUE_AFTER_SECONDS"))
    cutoff = timezone.now() - timedelta(seconds=older_than)
    waiting = ProfilingJob.objects.filter(status=ProfilingJob.QUEUED, task_id="", created_at__lte=cutoff)
    queued = 0
    for pk in list(waiting.order_by("pk").values_list("pk", flat=True)):
        with transaction.atomic():  # the row lock keeps two beat runs from queueing the same job
            job = waiting.select_for_update(skip_locked=True).filter(pk=pk).first()
            if job is None:
                continue
            if not enqueue_job(job):
                break
        log.info("profiling job %s queued again (its first queueing failed)", pk)
        queued += 1
    return queued


def _progress(job, stage, fraction, message):
    job.stage, job.progress, job.progress_message = stage, fraction, message[:255]
    job.save(update_fields=["stage", "progress", "progress_message"])


def _tree_size(path: str) -> int:
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def _save_model(job, mlmodel, role, label, model_version) -> Artifact:
    from .convert import save_mlmodel

    stem = os.path.splitext(os.path.basename(job.input_name))[0] or "model"
    rel = f"{job.relative_dir}/{role}/{stem}_{label}.mlpackage"
    os.makedirs(os.path.dirname(media_path(rel)), exist_ok=True)
    save_mlmodel(mlmodel, media_path(rel))
    return Artifact.objects.create(job=job, role=role, kind=MLPACKAGE, label=label, path=rel,
                                   size_bytes=_tree_size(media_path(rel)), model_version=model_version)


def _lint(artifact: Artifact) -> None:
    from .lint import lint_path

    report = lint_path(media_path(artifact.path))
    report["source"]["path"] = os.path.basename(artifact.path)  # no server paths in reports
    artifact.lint = report
    artifact.save(update_fields=["lint"])


def _derived_version(job, label, size) -> ModelVersion:
    mv = job.model_version
    derived, _ = ModelVersion.objects.get_or_create(
        project=job.project, name=mv.name, version=f"{mv.version}+{label}"[:64],
        defaults={"format": "mlprogram", "precision": label, "size_bytes": size},
    )
    return derived


def run_job(job_id: int) -> ProfilingJob:
    """Linux steps: convert (PyTorch input), lint, compress, lint; then the macOS step."""
    job = ProfilingJob.objects.select_related("model_version", "project").get(pk=job_id)
    if job.finished:
        return job
    _reset_outputs(job)  # a redelivered task (worker lost mid-job) starts again from the input
    job.status, job.started_at = ProfilingJob.RUNNING, timezone.now()
    job.save(update_fields=["status", "started_at"])
    stage = "prepare"
    try:
        base = job.artifacts.get(role=Artifact.INPUT)
        if not base.is_coreml:
            stage = "convert"
            _progress(job, stage, 0.1, f"converting {base.kind} to an ML program ({job.deployment_target})")
            from .convert import convert_torch

            mlmodel = convert_torch(media_path(base.path), job.input_shapes, kind=base.kind,
                                    minimum_deployment_target=job.deployment_target)
            base = _save_model(job, mlmodel, Artifact.CONVERTED, "fp16", job.model_version)
        stage = "lint"
        _progress(job, stage, 0.4, "linting the graph")
        _lint(base)
        if job.compression:
            stage = "compress"
            _progress(job, stage, 0.5, f"compressing ({job.compression})")
            import coremltools as ct

            from .compress import compress
            from .convert import stage as conversion_stage

            if not (base.lint or {}).get("source", {}).get("weights_present", True):
                raise ConversionError("compress", NO_WEIGHTS)
            with conversion_stage("compress"):
                source = ct.models.MLModel(media_path(base.path), skip_model_load=True)
            compressed = compress(source, job.compression)
            art = _save_model(job, compressed, Artifact.COMPRESSED, job.compression, None)
            art.model_version = _derived_version(job, job.compression, art.size_bytes)
            art.save(update_fields=["model_version"])
            stage = "lint"
            _progress(job, stage, 0.8, "linting the compressed graph")
            _lint(art)
        stage = "macos"
        _progress(job, stage, 0.9, "device measurements")
        start_macos_steps(job)
    except ConversionError as exc:
        return _fail(job, exc.stage, exc.message)
    except ModelInputError as exc:
        return _fail(job, stage, str(exc))
    except Exception as exc:  # noqa: BLE001 - stored as a message; the traceback goes to the log only
        log.exception("profiling job %s failed in %s", job.pk, stage)
        return _fail(job, stage, error_message(exc))
    job.status, job.finished_at, job.progress = ProfilingJob.SUCCEEDED, timezone.now(), 1.0
    job.progress_message = "done" if job.macos_status != ProfilingJob.MAC_NEEDS_WORKER else "done (Linux steps)"
    job.save(update_fields=["status", "finished_at", "progress", "progress_message"])
    return job


def _reset_outputs(job) -> None:
    for artifact in job.artifacts.exclude(role=Artifact.INPUT):
        shutil.rmtree(media_path(artifact.path), ignore_errors=True)
        artifact.delete()
    job.artifacts.filter(role=Artifact.INPUT).update(lint=None)


def job_folders(job) -> set[str]:
    """The job's folder, and the folders its artifacts live in (jobs stored before the UUID keys used their id)."""
    folders = {job.relative_dir}
    for path in job.artifacts.values_list("path", flat=True):
        parts = path.split("/")
        if len(parts) > 3 and parts[:2] == ["profiling", "jobs"]:
            folders.add("/".join(parts[:3]))
    return folders


def delete_job_files(job, folders=None) -> None:
    for folder in folders if folders is not None else job_folders(job):
        shutil.rmtree(media_path(folder), ignore_errors=True)


def public_message(message: str) -> str:
    """The message with server paths under MEDIA_ROOT replaced by the file's name (issue 16, item 8)."""
    root = os.path.abspath(settings.MEDIA_ROOT).rstrip(os.sep)
    return re.sub(re.escape(root) + r"[^\s'\"]*", lambda m: os.path.basename(m.group(0).rstrip("/\\")) or "file",
                  message or "")


NO_WEIGHTS = "this upload has no weights (weights/weight.bin is missing); compression needs them"


def _fail(job, stage, message) -> ProfilingJob:
    job.status, job.finished_at = ProfilingJob.FAILED, timezone.now()
    job.stage = job.error_stage = stage
    job.error_message = public_message(message)
    job.progress_message = f"failed in {stage}"
    if job.macos_status == ProfilingJob.MAC_PENDING:
        job.macos_status, job.macos_message = ProfilingJob.MAC_FAILED, "not run: an earlier step failed"
    job.save()
    return job


def _measurable(job):
    return [a for a in job.artifacts.order_by("id") if a.kind == MLPACKAGE]


def start_macos_steps(job) -> None:
    """Measure here when Core ML is available, else hand over to queue 'macos' or report it is needed."""
    available, why = device.capability()
    if available:
        run_macos_steps(job.pk)
        job.refresh_from_db(fields=["macos_status", "macos_message"])
    elif macos_workers_enabled():
        from .tasks import measure_on_macos

        job.macos_status, job.macos_message = ProfilingJob.MAC_QUEUED, "waiting for a worker of queue 'macos'"
        job.save(update_fields=["macos_status", "macos_message"])
        transaction.on_commit(lambda: _queue_macos(job.pk))
    else:
        job.macos_status, job.macos_message = ProfilingJob.MAC_NEEDS_WORKER, why
        job.save(update_fields=["macos_status", "macos_message"])


def _queue_macos(job_id: int) -> None:
    from perfboard.celery import publish

    from .tasks import measure_on_macos

    sent = publish(measure_on_macos, args=[job_id], queue="macos")
    if not sent:
        ProfilingJob.objects.filter(pk=job_id, macos_status=ProfilingJob.MAC_QUEUED).update(
            macos_status=ProfilingJob.MAC_FAILED,
            macos_message=f"not queued for a macOS worker: {sent.error}; upload the model again to measure it")


def run_macos_steps(job_id: int, measure=None) -> ProfilingJob:
    """Device measurements of every .mlpackage artifact, posted as runs. ``measure`` is injectable."""
    job = ProfilingJob.objects.select_related("project", "model_version").get(pk=job_id)
    if measure is None:
        available, why = device.capability()
        if not available:
            job.macos_status, job.macos_message = ProfilingJob.MAC_NEEDS_WORKER, why
            job.save(update_fields=["macos_status", "macos_message"])
            return job
        measure = device.measure
    try:
        total = 0
        for artifact in _measurable(job):
            total += record_measurements(job, artifact, measure(media_path(artifact.path)))
        job.macos_status, job.macos_message = ProfilingJob.MAC_DONE, f"{total} runs recorded"
    except Exception as exc:  # noqa: BLE001
        log.exception("macOS steps of job %s failed", job.pk)
        job.macos_status, job.macos_message = ProfilingJob.MAC_FAILED, error_message(exc)
    job.save(update_fields=["macos_status", "macos_message"])
    return job


def record_measurements(job, artifact, measurement: dict) -> int:
    """Turn one artifact's device measurement (device.measure() output) into runs via the ingest path.

    Run ids are derived from (job, artifact, compute units), so recording twice stores nothing new.
    """
    from collector.ingest import store_runs
    from collector.schema import RunIn

    mv = artifact.model_version or job.model_version
    # A stable fallback timestamp keeps the run body, hence ingest's idempotency, identical on re-recording.
    started = measurement.get("measured_at") or job.created_at.isoformat()
    runs = []
    for m in measurement["runs"]:
        body = {
            "run_id": str(uuid.uuid5(RUN_NAMESPACE, f"{job.pk}/{artifact.pk}/{m['compute_units']}")),
            "source": "lab",
            "model": {"name": mv.name, "version": mv.version, "format": "mlprogram",
                      "precision": artifact.label or "", "size_bytes": artifact.size_bytes},
            "device": measurement["device"],
            "app_build": "perfboard-profiling",
            "compute_units": m["compute_units"],
            "variant": "profiling-job",
            "started_at": m.get("started_at") or started,
            "status": m["status"],
            "failure": m.get("failure"),
            "load_kind": "cold",
            "timings_ms": {"load": m.get("load_ms"), "first_prediction": m.get("first_prediction_ms")},
            "predictions_ms": m.get("predictions_ms") or [],
            "compute_plan": m.get("compute_plan"),
        }
        runs.append(RunIn.model_validate(body))
    outcomes = store_runs(job.project, runs)
    return sum(1 for o in outcomes if o.status == "created")

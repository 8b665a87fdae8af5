"""Profiling pages: job list + upload form, job report (polls its JSON), lint JSON, diff of two lints."""
from __future__ import annotations

import json

from django.contrib.auth.decorators import login_required
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from collector.auth import visible_projects
from collector.models import ComputePlanEntry

from .compress import METHODS
from .conversion_hints import conversion_hint
from .convert import TARGETS
from .diff import diff_lints
from .errors import UploadRejected
from .findings import group_findings
from .jobs import before_after, create_fix_job, create_job, fp16_sources
from .models import Artifact, ProfilingJob
from .placement import placement_summary


def _jobs(request):
    return ProfilingJob.objects.filter(project__in=visible_projects(request)).select_related("project", "model_version")


def _job(request, job_id) -> ProfilingJob:
    try:
        return _jobs(request).get(pk=job_id)
    except ProfilingJob.DoesNotExist:
        raise Http404("no such profiling job") from None


def _artifact(request, artifact_id) -> Artifact:
    try:
        return Artifact.objects.select_related("job").get(pk=artifact_id, job__project__in=visible_projects(request))
    except (Artifact.DoesNotExist, ValueError):
        raise Http404("no such artifact") from None


def parse_shapes(text: str) -> list:
    """'1,3,224,224; 1,10' or JSON ([[1,3,224,224]] / [{"name": "x", "shape": [...]}])."""
    text = (text or "").strip()
    if not text:
        return []
    if text.startswith("["):
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise UploadRejected(f"input shapes are not valid JSON: {exc}") from None
        if not isinstance(value, list):
            raise UploadRejected("input shapes must be a list")
        return value
    try:
        return [[int(d) for d in part.replace("x", ",").split(",") if d.strip()] for part in text.split(";") if part.strip()]
    except ValueError:
        raise UploadRejected(f"input shapes must be integers like '1,3,224,224; 1,10', got {text!r}") from None


def _form_context(request, errors=None, values=None):
    return {
        "projects": visible_projects(request).order_by("slug"),
        "targets": TARGETS,
        "methods": METHODS,
        "errors": errors or [],
        "values": values or {"deployment_target": "iOS17"},
        "jobs": _jobs(request)[:100],
        "page": "profiling",
    }


@login_required
@require_http_methods(["GET", "POST"])
def job_list(request):
    if request.method == "GET":
        return render(request, "profiling/job_list.html", _form_context(request))
    values = request.POST.dict()
    errors = []
    project_id = values.get("project", "")
    project = visible_projects(request).filter(pk=int(project_id)).first() if project_id.isdigit() else None
    upload = request.FILES.get("file")
    if project is None:
        errors.append("choose a project you are a member of")
    if upload is None:
        errors.append("choose a model file to upload")
    for field in ("model_name", "version"):
        if not values.get(field, "").strip():
            errors.append(f"{field.replace('_', ' ')} is required")
    if not errors:
        try:
            job = create_job(
                project, upload, upload.name,
                model_name=values["model_name"].strip()[:200], version=values["version"].strip()[:64],
                input_shapes=parse_shapes(values.get("input_shapes", "")),
                deployment_target=values.get("deployment_target") or "iOS17",
                compression=values.get("compression", ""), user=request.user,
            )
            return redirect(reverse("profiling:job", args=[job.pk]))
        except UploadRejected as exc:
            errors.append(f"upload refused: {exc}")
    return render(request, "profiling/job_list.html", _form_context(request, errors, values), status=400)


def job_payload(job: ProfilingJob, with_lint=True) -> dict:
    return {
        "id": job.pk,
        "project": job.project.slug,
        "model": {"name": job.model_version.name, "version": job.model_version.version},
        "input": {"name": job.input_name, "kind": job.input_kind, "shapes": job.input_shapes},
        "deployment_target": job.deployment_target,
        "compression": job.compression,
        "status": job.status,
        "finished": job.finished,
        "stage": job.stage,
        "progress": round(job.progress, 3),
        "progress_message": job.progress_message,
        "error": ({"stage": job.error_stage, "message": job.error_message, "hint": conversion_hint(job.error_message)}
                  if job.status == job.FAILED else None),
        "macos": {"status": job.macos_status, "message": job.macos_message},
        "created_at": job.created_at.isoformat(),
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "artifacts": [
            {
                "id": a.pk, "role": a.role, "kind": a.kind, "label": a.label, "size_bytes": a.size_bytes,
                "model_version": str(a.model_version) if a.model_version else None,
                "lint_url": reverse("profiling:lint", args=[a.pk]) if a.lint else None,
                **({"lint": a.lint} if with_lint else {}),
            }
            for a in job.artifacts.select_related("model_version")
        ],
    }


@login_required
def job_json(request, job_id):
    full = request.GET.get("lint", "1") != "0"
    return JsonResponse(job_payload(_job(request, job_id), with_lint=full))


@login_required
def artifact_lint(request, artifact_id):
    artifact = _artifact(request, artifact_id)
    if artifact.lint is None:
        raise Http404("this artifact has no lint report")
    return JsonResponse(artifact.lint)


def _placement(job):
    versions = {a.model_version_id for a in job.artifacts.all() if a.model_version_id}
    rows = (
        ComputePlanEntry.objects.filter(run__model_version_id__in=versions)
        .select_related("run__device")
        .values("op", "op_type", "device", "estimated_cost", "run__compute_units", "run__device__identifier",
                "run__device__name")
    )
    entries = [
        {"device_name": r["run__device__name"] or r["run__device__identifier"], "compute_units": r["run__compute_units"],
         "op": r["op"], "op_type": r["op_type"], "device": r["device"], "estimated_cost": r["estimated_cost"]}
        for r in rows[:50_000]
    ]
    return placement_summary(entries, [a.lint for a in job.artifacts.all()])


@login_required
def job_detail(request, job_id):
    job = _job(request, job_id)
    artifacts = list(job.artifacts.select_related("model_version"))
    linted = [a for a in artifacts if a.lint]
    for a in artifacts:
        a.finding_groups = group_findings(a.lint)
    context = {
        "job": job,
        "artifacts": artifacts,
        "error_hint": conversion_hint(job.error_message) if job.status == job.FAILED else None,
        "payload_url": reverse("profiling:job-json", args=[job.pk]) + "?lint=0",
        "diff_pair": (linted[0], linted[-1]) if len(linted) >= 2 else None,
        "fix_sources": fp16_sources(job) if any(a.dynamic_weight_count for a in linted) else None,
        "methods": METHODS,
        "before_after": before_after(job),
        "placement": _placement(job),
        "page": "profiling",
    }
    return render(request, "profiling/job_detail.html", context)


@login_required
@require_http_methods(["POST"])
def fix_job(request, job_id):
    """Start the fix of a job with dynamic_weight findings: compress an fp16 package of the model (issue 16, item 4)."""
    job = _job(request, job_id)
    source = None
    if request.POST.get("source", "").isdigit():
        source = Artifact.objects.filter(pk=int(request.POST["source"]), job__project=job.project).first()
    try:
        fix = create_fix_job(job, request.POST.get("method", "int8"), source=source, user=request.user)
    except UploadRejected as exc:
        return render(request, "profiling/fix_refused.html", {"job": job, "error": str(exc), "page": "profiling"},
                      status=400)
    return redirect(reverse("profiling:job", args=[fix.pk]))


@login_required
def diff(request):
    try:
        a, b = _artifact(request, int(request.GET["a"])), _artifact(request, int(request.GET["b"]))
    except (KeyError, ValueError):
        # Opened without two artifacts (or with unreadable ids): a page saying how to pick them, as a 400.
        return render(request, "profiling/diff_missing.html", {"page": "profiling"}, status=400)
    if not (a.lint and b.lint):
        raise Http404("both artifacts need a lint report")
    result = diff_lints(a.lint, b.lint)
    if request.GET.get("format") == "json":
        return JsonResponse({"a": a.pk, "b": b.pk, **result})
    return render(request, "profiling/diff.html", {"a": a, "b": b, "diff": result, "page": "profiling"})

"""Profiling jobs: an uploaded model, what was made from it (artifacts) and each artifact's lint.

Files live under MEDIA_ROOT/profiling/jobs/<storage key>/ (a UUID, so databases sharing a media folder never
share a job folder); rows store paths relative to MEDIA_ROOT.
"""
import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from collector.models import ModelVersion, Project


def _choices(values):
    return [(v, v) for v in values]


class ProfilingJob(models.Model):
    QUEUED, RUNNING, SUCCEEDED, FAILED = "queued", "running", "succeeded", "failed"
    STATUSES = [QUEUED, RUNNING, SUCCEEDED, FAILED]
    # Device measurements need Core ML's runtime (a Mac); on Linux they end as NEEDS_MACOS.
    MAC_PENDING, MAC_QUEUED, MAC_NEEDS_WORKER, MAC_DONE, MAC_FAILED = (
        "pending", "queued", "needs_macos_worker", "done", "failed",
    )
    MAC_STATUSES = [MAC_PENDING, MAC_QUEUED, MAC_NEEDS_WORKER, MAC_DONE, MAC_FAILED]

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="profiling_jobs")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="profiling_jobs")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    input_kind = models.CharField(max_length=16)  # profiling.uploads.KINDS
    input_name = models.CharField(max_length=255)
    input_shapes = models.JSONField(default=list, blank=True, help_text='[{"name": "x", "shape": [1, 3, 224, 224]}]')
    deployment_target = models.CharField(max_length=16, default="iOS17")
    compression = models.CharField(max_length=16, blank=True, help_text="'' or int8, palettize4/6/8")

    status = models.CharField(max_length=10, choices=_choices(STATUSES), default=QUEUED)
    stage = models.CharField(max_length=32, blank=True, help_text="Stage running now, or the one that failed.")
    progress = models.FloatField(default=0.0, help_text="0..1, for the polling page.")
    progress_message = models.CharField(max_length=255, blank=True)
    error_stage = models.CharField(max_length=32, blank=True)
    error_message = models.TextField(blank=True, help_text="The library's own message, not a traceback.")
    macos_status = models.CharField(max_length=20, choices=_choices(MAC_STATUSES), default=MAC_PENDING)
    macos_message = models.TextField(blank=True)
    task_id = models.CharField(max_length=64, blank=True)
    fix_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="fixes",
                               help_text="The job whose dynamic_weight findings this job fixes (issue 16, item 4).")
    storage_key = models.UUIDField(default=uuid.uuid4, unique=True, editable=False,
                                   help_text="Names the job's folder under MEDIA_ROOT/profiling/jobs/.")

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["project", "created_at"], name="profjob_project_time")]

    @property
    def finished(self):
        return self.status in (self.SUCCEEDED, self.FAILED)

    @property
    def relative_dir(self):
        return f"profiling/jobs/{self.storage_key}"

    def __str__(self):
        return f"job {self.pk} ({self.input_name})"


class Artifact(models.Model):
    INPUT, CONVERTED, COMPRESSED = "input", "converted", "compressed"
    ROLES = [INPUT, CONVERTED, COMPRESSED]

    job = models.ForeignKey(ProfilingJob, on_delete=models.CASCADE, related_name="artifacts")
    # The uploaded/converted model is the job's version; a compressed one gets "<version>+<label>".
    model_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="profiling_artifacts"
    )
    role = models.CharField(max_length=12, choices=_choices(ROLES))
    kind = models.CharField(max_length=16, help_text="mlpackage, mlmodel, torchscript or torch_export")
    label = models.CharField(max_length=32, blank=True, help_text="e.g. fp16, int8, palettize4")
    path = models.CharField(max_length=500, help_text="Relative to MEDIA_ROOT.")
    size_bytes = models.BigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    lint = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]

    @property
    def is_coreml(self):
        return self.kind in ("mlpackage", "mlmodel")

    @property
    def dynamic_weight_count(self):
        return (self.lint or {}).get("summary", {}).get("dynamic_weight", 0)

    def __str__(self):
        return f"{self.role} {self.label or self.kind} of job {self.job_id}"

"""Regression alerts (issue 6): what a check found, its evidence and its triage state; per-project notification
settings; the check's watermark.

Alerts are grouped like Perfherder's alert summaries (issue 12): one :class:`AlertSummary` per (project, model,
version) change holds every alert a check raised for that version (each unit × metric × chip). Triage is set on the
summary (it applies to the alerts nobody triaged separately) or on one alert; each decision may carry a note
(:class:`AlertNote`: who, when, what).

An alert's identity is its ``fingerprint`` (kind, model, version, chip, compute units, metric; see
:func:`fingerprint`), unique per project: a check run twice, or by two workers at once, finds the existing alert
instead of adding one.
"""
import hashlib

from django.conf import settings
from django.db import models
from django.utils import timezone

from collector.models import Device, Project, choices
from insights.vocabulary import COMPUTE_UNITS, LOAD_KINDS, RESHAPE_FREQUENCIES, SPECIALIZATION_STRATEGIES

# silent_fallback: a Neural Engine unit of a chip runs on the CPU from a version on (insights.fallback, issue 14).
KINDS = ["slowdown", "crash_rate", "placement", "silent_fallback"]
STATES = ["new", "acknowledged", "invalid", "fixed"]


def fingerprint(kind, model, version, chip, compute_units, metric, os_major=None, baseline_os_major=None, hints=None):
    """The identity of a regression: the same values give the same alert, whatever the evidence's numbers.

    A slowdown or failure-rate rise is one regression per (model version, chip, compute units, metric), whichever
    series showed it (the chip's, one device's, one OS cohort's: a later check with more runs may see it in another
    one). A placement shift is one per OS cohort: the plans compared differ per OS.
    """
    parts = [kind, model, version, chip, compute_units, metric]
    if hints:  # a configuration's own series (optimization hints other than Apple's defaults)
        parts += [f"{name}={value}" for name, value in sorted(hints.items())]
    if kind == "placement":
        parts += ["" if os_major is None else str(os_major),
                  "" if baseline_os_major is None else str(baseline_os_major)]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


class AlertSummary(models.Model):
    """One model version's change in one project: the alerts it raised, triaged together."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="alert_summaries")
    model = models.CharField(max_length=200, help_text="Model name.")
    version = models.CharField(max_length=64, help_text="The model version that regressed.")
    state = models.CharField(max_length=12, choices=choices(STATES), default="new",
                             help_text="Set by a person; applies to the alerts not triaged separately.")
    state_changed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                         related_name="+")
    state_changed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "alert summaries"
        constraints = [models.UniqueConstraint(fields=["project", "model", "version"],
                                               name="alert_summary_once_per_version")]

    @classmethod
    def of(cls, project_id: int, model: str, version: str, created_at=None) -> "AlertSummary":
        """The summary of this model version, made if it is the version's first alert."""
        summary, _ = cls.objects.get_or_create(project_id=project_id, model=model, version=version,
                                               defaults={"created_at": created_at or timezone.now()})
        return summary

    def __str__(self):
        return f"{self.model} {self.version}"


class Alert(models.Model):
    summary = models.ForeignKey(AlertSummary, on_delete=models.CASCADE, related_name="alerts",
                                help_text="The model version's change this alert belongs to; set on saving.")
    triaged_separately = models.BooleanField(
        default=False, help_text="A person set this alert's state itself: its summary's triage leaves it alone.")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="alerts")
    kind = models.CharField(max_length=16, choices=choices(KINDS))
    state = models.CharField(max_length=12, choices=choices(STATES), default="new")
    model = models.CharField(max_length=200, help_text="Model name.")
    version = models.CharField(max_length=64, help_text="The model version that regressed.")
    baseline_version = models.CharField(max_length=64)
    device = models.ForeignKey(Device, on_delete=models.PROTECT, null=True, blank=True, related_name="alerts",
                               help_text="Empty when the alert is raised for a whole chip.")
    chip = models.CharField(max_length=32)
    compute_units = models.CharField(max_length=20, choices=choices(COMPUTE_UNITS))
    # The series' optimization hints (with compute_units, its configuration; defaults for most alerts).
    specialization_strategy = models.CharField(max_length=16, choices=choices(SPECIALIZATION_STRATEGIES),
                                               default=SPECIALIZATION_STRATEGIES[0])
    reshape_frequency = models.CharField(max_length=12, choices=choices(RESHAPE_FREQUENCIES),
                                         default=RESHAPE_FREQUENCIES[0])
    metric = models.CharField(max_length=32, help_text="e.g. prediction_ms_median, load_ms_cold, crash_rate.")
    load_kind = models.CharField(max_length=10, choices=choices(LOAD_KINDS), blank=True)
    os_major = models.PositiveSmallIntegerField(null=True, blank=True, help_text="Empty: all OS versions.")
    baseline_os_major = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Placement shifts between OS versions: the OS the plan moved from.")
    baseline = models.FloatField(help_text="Median (times, memory), rate (crash_rate) or Neural Engine op share.")
    current = models.FloatField()
    change = models.FloatField(help_text="Relative for times (0.157 = 15.7% slower); a difference for rates.")
    p_value = models.FloatField(null=True, blank=True)
    runs_baseline = models.PositiveIntegerField()
    runs_current = models.PositiveIntegerField()
    ops = models.JSONField(default=list, blank=True, help_text="Ops that left the Neural Engine (placement).")
    baseline_run_ids = models.JSONField(default=list, blank=True)
    current_run_ids = models.JSONField(default=list, blank=True)
    fingerprint = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now, help_text="Evidence last refreshed by a check.")
    state_changed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                         related_name="+")
    state_changed_at = models.DateTimeField(null=True, blank=True)
    notified_at = models.DateTimeField(null=True, blank=True, help_text="Webhook and e-mail tasks queued.")
    webhook_delivered_at = models.DateTimeField(null=True, blank=True)
    email_sent_at = models.DateTimeField(null=True, blank=True)
    withdrawn_at = models.DateTimeField(
        null=True, blank=True,
        help_text="Set by a check that re-read this alert's series and no longer shows it (more runs placed the "
                  "step at another version, or it was noise); cleared if a later check shows it again.")
    withdrawal_notified_at = models.DateTimeField(null=True, blank=True,
                                                  help_text="Webhook told of the withdrawal: task queued.")
    withdrawal_delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "fingerprint"], name="alert_once_per_regression")]
        indexes = [
            models.Index(fields=["project", "-created_at"], name="alert_project_newest"),
            models.Index(fields=["project", "model", "version"], name="alert_project_version"),
        ]

    def save(self, *args, **kwargs):
        if self.summary_id is None:  # every alert belongs to its version's summary, however it was made
            self.summary = AlertSummary.of(self.project_id, self.model, self.version, self.created_at)
        super().save(*args, **kwargs)

    @property
    def level(self) -> str:
        return self.device.identifier if self.device_id else self.chip

    def __str__(self):
        return f"{self.kind} {self.model} {self.version} {self.level} {self.compute_units} {self.metric}"


class AlertNote(models.Model):
    """A person's note on a summary, or on one of its alerts (``alert`` set); ``state`` is the triage state they set
    with it, if any."""

    summary = models.ForeignKey(AlertSummary, on_delete=models.CASCADE, related_name="notes")
    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, null=True, blank=True, related_name="notes",
                              help_text="Empty: a note on the whole summary.")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    state = models.CharField(max_length=12, choices=choices(STATES), blank=True,
                             help_text="The state set with this note; empty: a note alone.")
    text = models.TextField(blank=True, max_length=4000)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self):
        return f"note on {self.alert or self.summary}"


class NotificationSettings(models.Model):
    """Where a project's new alerts are sent. The webhook body is signed: ``X-Perfboard-Signature: sha256=<hex>``,
    the HMAC-SHA256 of the raw body with ``webhook_secret``."""

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="notification_settings")
    webhook_url = models.URLField(blank=True)
    webhook_secret = models.CharField(max_length=200, blank=True)
    email_recipients = models.TextField(blank=True, help_text="E-mail addresses, separated by commas or lines.")

    class Meta:
        verbose_name = verbose_name_plural = "notification settings"

    def recipients(self) -> list[str]:
        return [a.strip() for a in self.email_recipients.replace("\n", ",").split(",") if a.strip()]

    def __str__(self):
        return f"notifications of {self.project}"


class CheckState(models.Model):
    """The scheduled check's progress per project. ``received_watermark``: runs received up to then were checked.
    The row is also the lock that serialises writing alerts of one project (select_for_update)."""

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="check_state")
    received_watermark = models.DateTimeField(null=True, blank=True)
    last_started_at = models.DateTimeField(null=True, blank=True)
    last_finished_at = models.DateTimeField(null=True, blank=True)
    last_alerts_created = models.PositiveIntegerField(default=0)

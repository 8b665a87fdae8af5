"""What Perfboard stores: projects, runner tokens, the device catalogue, model versions and benchmark runs.

A run's warm predictions are summarised once at ingest into columns (`prediction_*_ms`) so that dashboards
aggregate columns; the raw series is kept off the run row, in `RunPredictions`, for the run's detail view.
"""
import hashlib
import secrets

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from insights.vocabulary import (COMPUTE_UNITS, FAILURE_STATUSES, LOAD_KINDS, PLAN_DEVICES, RESHAPE_FREQUENCIES,
                                 SOURCES, SPECIALIZATION_STRATEGIES, STAGES,
                                 STATUSES, THERMAL_STATES)


def choices(values):
    return [(v, v) for v in values]


class Project(models.Model):
    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="projects", blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return self.slug


class RunnerToken(models.Model):
    """A bearer token for one project. Only its SHA-256 is stored; the token is shown once at creation.

    `runner` tokens upload runs and read their project's runs, policies and coverage; `policy` tokens, shipped
    inside apps, only read policies.
    """

    RUNNER, POLICY = "runner", "policy"
    PREFIX = "pb_"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="tokens")
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=10, choices=choices([RUNNER, POLICY]), default=RUNNER)
    key_hash = models.CharField(max_length=64, unique=True)
    hint = models.CharField(max_length=12, help_text="First characters of the token, to tell tokens apart.")
    created_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="token_name_per_project")]

    @staticmethod
    def hash(token: str) -> str:
        # Tokens carry 256 random bits, so a fast hash is enough: nothing to brute-force.
        return hashlib.sha256(token.encode()).hexdigest()

    @classmethod
    def issue(cls, project, name, kind=RUNNER):
        """Create a token and return (row, plaintext token)."""
        token = cls.PREFIX + secrets.token_urlsafe(32)
        row = cls.objects.create(project=project, name=name, kind=kind, key_hash=cls.hash(token), hint=token[:10])
        return row, token

    @property
    def is_active(self):
        return self.revoked_at is None

    def __str__(self):
        return f"{self.project.slug}/{self.name} ({self.kind})"


class Device(models.Model):
    identifier = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=100, blank=True)
    chip = models.CharField(max_length=32, blank=True)
    chip_rank = models.FloatField(null=True, blank=True, help_text="Orders chips by generation.")
    ram_gb = models.PositiveSmallIntegerField(null=True, blank=True)
    known = models.BooleanField(default=False, help_text="False for identifiers missing from the catalogue.")

    @property
    def display_name(self):
        return self.name if self.known else f"{self.identifier} (unknown)"

    def __str__(self):
        return self.display_name


class ModelVersion(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="model_versions")
    name = models.CharField(max_length=200)
    version = models.CharField(max_length=64)
    sha256 = models.CharField(max_length=64, blank=True)
    format = models.CharField(max_length=32, blank=True)
    precision = models.CharField(max_length=32, blank=True)
    size_bytes = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "name", "version"], name="model_version_per_project")
        ]

    def __str__(self):
        return f"{self.name} {self.version}"


class RunQuerySet(models.QuerySet):
    def delete(self):
        """Delete runs and rebuild the sketch rows they were in (``collector.sketches``): a deleted run's values
        must leave the merged evidence, and a sketch cannot subtract."""
        from .sketches import rebuild_keys_of

        with transaction.atomic():
            keys = rebuild_keys_of(self)
            deleted = super().delete()
            keys.rebuild()
        return deleted


class Run(models.Model):
    # The idempotency key within a project (unique with `project`, below): projects are independent, and the same
    # run_id in another project is another run.
    run_id = models.UUIDField(db_index=True)
    body_sha256 = models.CharField(max_length=64, help_text="Hash of the validated body: a resend must match it.")
    # Indexed by the (project, ...) indexes below, the newest runs' first.
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="runs", db_index=False)
    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="runs")
    device = models.ForeignKey(Device, on_delete=models.PROTECT, related_name="runs")
    os_version = models.CharField(max_length=32)
    os_major = models.PositiveSmallIntegerField()
    app_build = models.CharField(max_length=64, blank=True)
    source = models.CharField(max_length=8, choices=choices(SOURCES))
    compute_units = models.CharField(max_length=20, choices=choices(COMPUTE_UNITS))
    # The run's optimization_hints (absent in the upload: Apple's defaults); with compute_units, its configuration.
    specialization_strategy = models.CharField(max_length=16, choices=choices(SPECIALIZATION_STRATEGIES),
                                               default=SPECIALIZATION_STRATEGIES[0])
    reshape_frequency = models.CharField(max_length=12, choices=choices(RESHAPE_FREQUENCIES),
                                         default=RESHAPE_FREQUENCIES[0])
    variant = models.CharField(max_length=64, blank=True)
    started_at = models.DateTimeField()
    received_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=8, choices=choices(STATUSES))
    failure_stage = models.CharField(max_length=20, choices=choices(STAGES), blank=True)
    failure_message = models.TextField(blank=True)
    load_kind = models.CharField(max_length=10, choices=choices(LOAD_KINDS))
    decrypt_ms = models.FloatField(null=True, blank=True)
    compile_ms = models.FloatField(null=True, blank=True)
    load_ms = models.FloatField(null=True, blank=True)
    first_prediction_ms = models.FloatField(null=True, blank=True)
    prediction_count = models.PositiveIntegerField(default=0)
    prediction_min_ms = models.FloatField(null=True, blank=True)
    prediction_median_ms = models.FloatField(null=True, blank=True)
    prediction_p90_ms = models.FloatField(null=True, blank=True)
    prediction_p99_ms = models.FloatField(null=True, blank=True)
    prediction_mean_ms = models.FloatField(null=True, blank=True)
    prediction_std_ms = models.FloatField(null=True, blank=True)
    peak_memory_mb = models.FloatField(null=True, blank=True)
    thermal_state = models.CharField(max_length=10, choices=choices(THERMAL_STATES), blank=True)
    has_compute_plan = models.BooleanField(default=False)

    objects = RunQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "run_id"], name="run_id_per_project")]
        indexes = [
            # The dashboard's matrices: one model version, grouped by device and compute units.
            models.Index(fields=["model_version", "device", "compute_units"], name="run_version_device_units"),
            models.Index(fields=["model_version", "started_at"], name="run_version_time"),
            models.Index(fields=["device", "compute_units", "started_at"], name="run_device_units_time"),
            # A project's runs in the run list's order (newest first, then by id), so a page's ids come from the
            # index alone: at 1M runs, page 5,000 walked 500,000 index entries and their heap rows (480 ms), the
            # index alone 94 ms.
            models.Index(fields=["project", "started_at", "id"], name="run_project_time_id"),
            # A project's last uploads (the fleet page's list: newest id first). By the primary key alone, a project
            # whose last upload is older walked every newer run of the other projects (110,000 rows, 88 ms).
            models.Index(fields=["project", "id"], name="run_project_newest"),
            # What is still read of the runs themselves: the failed runs (a few percent of runs: the run list
            # filtered by status, and failures by stage under a filter no sketch row is cut by), and the runs that
            # uploaded a compute plan. The failed runs' index carries what failures by stage count and filter by, so
            # PostgreSQL answers from the index alone (the runs' heap pages: 12,800 reads for 13,500 failed runs at
            # 1M, when the fleet page counted them so).
            models.Index(fields=["project", "model_version"], condition=~models.Q(status="ok"), name="run_failed",
                         include=["compute_units", "status", "failure_stage", "device", "os_major", "source",
                                  "variant", "specialization_strategy", "reshape_frequency", "started_at"]),
            models.Index(fields=["model_version"], condition=models.Q(has_compute_plan=True), name="run_with_plan"),
        ]

    @property
    def failed(self):
        return self.status in FAILURE_STATUSES

    @property
    def predictions_ms(self) -> list[float]:
        """The warm predictions in call order, from the side table (no row: the run made none)."""
        try:
            return self.prediction_series.predictions_ms
        except RunPredictions.DoesNotExist:
            return []

    def delete(self, *args, **kwargs):
        return Run.objects.filter(pk=self.pk).delete()

    def __str__(self):
        return str(self.run_id)


class RunPredictions(models.Model):
    """A run's raw warm predictions, off the run row: only a run's detail reads them, while the queries that scan
    runs read the summary columns, so the series (~40% of a run row's bytes) would only widen every page they read
    (docs/scaling.md, "The runs table"). Runs without predictions have no row."""

    run = models.OneToOneField(Run, on_delete=models.CASCADE, primary_key=True, related_name="prediction_series")
    predictions_ms = models.JSONField()


class ComputePlanEntry(models.Model):
    """One op's placement as MLComputePlan reported it on the device."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="compute_plan")
    op = models.CharField(max_length=256)
    op_type = models.CharField(max_length=64)
    device = models.CharField(max_length=16, choices=choices(PLAN_DEVICES))
    estimated_cost = models.FloatField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["run", "device"], name="plan_run_device")]


class SketchColumns(models.Model):
    """What every sketch row holds for the runs of its key: exact counts (every run; failed ones per status) and, per
    sketched run column (``collector.sketches.COLUMNS``), a serialized Apache DataSketches KLL sketch of that column's
    values from the key's successful runs. Rows are updated by the upload or folded in by a worker
    (``collector.sketches.add_runs``, ``PendingRun``); the evidence query merges them. The key always names a configuration
    (compute units and optimization hints) of one load kind and one model version."""

    # Rows derived from runs, whose own foreign keys hold these references: no database constraint (each is a
    # trigger per new row, and new rows were most of an upload's PostgreSQL time when every run opens its rows), no
    # index of its own for the model version (the keys start with it) or the device (deleted only by an operator).
    # Django's cascade still deletes the rows of a deleted project, version or device.
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+", db_constraint=False)
    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="+", db_constraint=False,
                                      db_index=False)
    compute_units = models.CharField(max_length=20, choices=choices(COMPUTE_UNITS))
    load_kind = models.CharField(max_length=10, choices=choices(LOAD_KINDS))
    # The runs' optimization hints: with compute_units, their configuration, never pooled (issue 14).
    specialization_strategy = models.CharField(max_length=16, choices=choices(SPECIALIZATION_STRATEGIES),
                                               default=SPECIALIZATION_STRATEGIES[0])
    reshape_frequency = models.CharField(max_length=12, choices=choices(RESHAPE_FREQUENCIES),
                                         default=RESHAPE_FREQUENCIES[0])
    runs = models.PositiveIntegerField(default=0)
    failures = models.JSONField(default=dict, help_text="failed status -> runs (statuses with failures only)")
    failure_stages = models.JSONField(
        default=dict, help_text="stage -> failed runs that failed in it (collector.sketches.stage_of; stages with "
                                "failures only): the fleet page's failures by stage without reading runs")
    decrypt_ms = models.BinaryField(null=True)
    compile_ms = models.BinaryField(null=True)
    load_ms = models.BinaryField(null=True)
    first_prediction_ms = models.BinaryField(null=True)
    prediction_median_ms = models.BinaryField(null=True)
    prediction_p90_ms = models.BinaryField(null=True)
    peak_memory_mb = models.BinaryField(null=True)
    launch_ms = models.BinaryField(null=True, help_text="time to first result (collector.sketches.launch_ms)")
    ready_ms = models.BinaryField(null=True, help_text="decrypt + compile + load (collector.sketches.ready_ms)")

    class Meta:
        abstract = True


class DeviceSketchRow(SketchColumns):
    """Sketch rows of one device."""

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="+", db_constraint=False,
                               db_index=False)

    class Meta:
        abstract = True


class SketchRow(DeviceSketchRow):
    """Sketch rows keyed by OS version, source and variant too (and for ``RunSketch`` the UTC day), so every filter
    of a page can be answered by them."""

    os_version = models.CharField(max_length=32)
    os_major = models.PositiveSmallIntegerField()
    source = models.CharField(max_length=8, choices=choices(SOURCES))
    variant = models.CharField(max_length=64, blank=True)

    class Meta:
        abstract = True


class RunSketch(SketchRow):
    """A key's runs of one UTC day: what a question bounded in time merges."""

    day = models.DateField(help_text="The UTC date of the runs' started_at.")

    class Meta:
        # The day right after the version: every question these rows answer names days (a time bound, or a daily
        # series), so a version's days are one range of the index (migration 0024).
        constraints = [models.UniqueConstraint(
            fields=["model_version", "day", "device", "compute_units", "load_kind", "os_version", "source", "variant",
                    "specialization_strategy", "reshape_frequency"],
            name="run_sketch_key")]
        indexes = [models.Index(fields=["project", "day"], name="run_sketch_project_day")]


class RunSketchTotal(SketchRow):
    """A key's runs of every day: what a question without a time bound but with an OS, source or variant filter (or
    grouping) merges. Its rows are bounded by the keys, not by the days, so a page over a model version merges as
    many rows at 10M runs as at 100k."""

    class Meta:
        constraints = [models.UniqueConstraint(
            fields=["model_version", "device", "compute_units", "load_kind", "os_version", "source", "variant",
                    "specialization_strategy", "reshape_frequency"],
            name="run_sketch_total_key")]


class RunSketchSource(DeviceSketchRow):
    """A configuration's runs on one device, of one load kind and one source, over every OS version, variant and day:
    what a question filtered (or grouped) by source alone merges (a page's field-only view, its policy, the fleet
    page's field-only counts). At 1M fleet runs a version's 704 field rows against its 1,762 source-and-OS rows, which
    split them by OS major version too for an iOS-range question (issue 13)."""

    # The project's index is the one below (it starts with the project).
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+", db_constraint=False,
                                db_index=False)
    source = models.CharField(max_length=8, choices=choices(SOURCES))

    class Meta:
        constraints = [models.UniqueConstraint(
            fields=["model_version", "device", "compute_units", "load_kind", "source", "specialization_strategy",
                    "reshape_frequency"],
            name="run_sketch_source_key")]
        # A project's field-only counts over every model, from the index alone, as RunSketchSourceOS's.
        indexes = [models.Index(fields=["project", "source"], name="run_sketch_source_project",
                                include=["model_version", "device", "compute_units", "runs", "failures"])]


class RunSketchSourceOS(DeviceSketchRow):
    """A configuration's runs on one device, of one load kind, one source and one OS major version, over every OS
    version of that major, variant and day: what a question filtered (or grouped) by OS major merges, with or
    without a source (a page's iOS-range view; a field-only view merges ``RunSketchSource``). At 1M fleet runs a
    version's 1,258 rows of iOS 26 and later against 3,439 totals rows (issue 13)."""

    # The project's index is the one below (it starts with the project).
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+", db_constraint=False,
                                db_index=False)
    os_major = models.PositiveSmallIntegerField()
    source = models.CharField(max_length=8, choices=choices(SOURCES))

    class Meta:
        constraints = [models.UniqueConstraint(
            fields=["model_version", "device", "compute_units", "load_kind", "source", "specialization_strategy",
                    "reshape_frequency", "os_major"],
            name="run_sketch_source_os_key")]
        # A project's iOS-range counts over every model: the fleet page's runs, devices, versions and failures, from
        # the index alone (its field-only counts, before RunSketchSource: these ~2 KB rows' heap, 4,968 pages read
        # for 10,961 rows at 1M runs, 22 -> 7 ms; migration 0025).
        indexes = [models.Index(fields=["project", "source", "os_major"], name="run_sketch_sos_project",
                                include=["model_version", "device", "compute_units", "runs", "failures"])]


class RunSketchConfiguration(DeviceSketchRow):
    """A configuration's runs on one device, of one load kind, over every OS version, source, variant and day: what a
    question that names none of them merges (a page's default view, the policy and its export). One row per
    (model version, device, configuration, load kind): at 100k fleet runs a version's 717 rows against its 8,391
    totals rows (issue 13)."""

    class Meta:
        constraints = [models.UniqueConstraint(
            fields=["model_version", "device", "compute_units", "load_kind", "specialization_strategy",
                    "reshape_frequency"],
            name="run_sketch_configuration_key")]


class RunSketchVariant(DeviceSketchRow):
    """A configuration's runs on one device, of one load kind and one named A/B variant, over every OS version,
    source and day: what a question of one variant merges (``?variant=prewarm``) instead of the totals, which split
    it by OS version and source too (at 1M fleet runs, segmenter-lite's prewarm runs: 711 rows against 4,224).

    Only runs of a named variant: a version's runs without one (variant "") would repeat its configuration rows
    here, one more row written for every run; a question of them (``variant=none``) merges the totals, and
    ``collector.sketches.tier_for`` picks this table only for a question that names a variant."""

    named_variants_only = True  # collector.sketches: rows of runs with a variant only
    variant = models.CharField(max_length=64)

    class Meta:
        constraints = [models.UniqueConstraint(
            fields=["model_version", "device", "compute_units", "load_kind", "variant", "specialization_strategy",
                    "reshape_frequency"],
            name="run_sketch_variant_key")]


class RunSketchVersionDay(SketchColumns):
    """A configuration's runs of one load kind on one UTC day, over every device, OS version, source and variant:
    what a daily series that names no device merges (the versions page's chart). At 1M fleet runs 1,289 rows
    against 80,506 daily rows."""

    day = models.DateField(help_text="The UTC date of the runs' started_at.")

    class Meta:
        constraints = [models.UniqueConstraint(
            fields=["model_version", "compute_units", "load_kind", "specialization_strategy", "reshape_frequency",
                    "day"],
            name="run_sketch_version_day_key")]


class RunSketchSourceOSDay(SketchColumns):
    """A configuration's runs of one load kind, one source and one OS major version on one UTC day, over every
    device, OS version of that major and variant: what a daily series or a question without a device merges when it
    names a source or OS major (the versions page's chart and the compare page's launch stages of a field-only or
    iOS-range view). At 1M fleet runs the versions chart of iOS 26 and later merges 724 of these rows against 16,102
    daily rows."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+", db_constraint=False,
                                db_index=False)
    os_major = models.PositiveSmallIntegerField()
    source = models.CharField(max_length=8, choices=choices(SOURCES))
    day = models.DateField(help_text="The UTC date of the runs' started_at.")

    class Meta:
        constraints = [models.UniqueConstraint(
            fields=["model_version", "compute_units", "load_kind", "source", "specialization_strategy",
                    "reshape_frequency", "day", "os_major"],
            name="run_sketch_source_os_day_key")]
        # As RunSketchSourceOS's: a project's counts per unit and version, its failures by stage, and the count
        # that picks this table or that one (collector.sketches.tier_for), from the index alone (at 1M runs the
        # fleet page's field-only view: 3.2, 3.3 and 6.4 ms -> 1.2, 1.0 and under 1).
        indexes = [models.Index(fields=["project", "source", "os_major"], name="run_sketch_sos_day_project",
                                include=["model_version", "compute_units", "runs", "failures", "failure_stages"])]


class PendingRun(models.Model):
    """A stored run not yet added to its sketch rows. With a task broker an upload stores its runs and lists them
    here, and a worker adds them to every tier (``collector.sketches.fold_pending``) seconds later, many uploads at
    once: the upload's request does not pay the sketch update, and a large row is rewritten once per fold instead of
    once per upload. Meanwhile the evidence query merges these runs' own values with the rows, in one statement, so an
    answer is as fresh as the last upload either way. Without a broker (the embedded set-up) the upload updates the
    rows itself and nothing is listed here."""

    # Derived from the run, like the sketch rows: no constraint (a trigger per run on the ingest path); Django's
    # cascade deletes it with its run.
    run = models.OneToOneField(Run, primary_key=True, on_delete=models.CASCADE, related_name="sketch_pending",
                               db_constraint=False)

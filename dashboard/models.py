"""Rollups: per model version, the aggregates the overview, compare and versions pages show, computed once over all
the version's runs and reused until new runs of that version arrive (see dashboard/rollups.py).

Medians do not add up, so a rollup row is not a partial sum: it is the finished answer for one (device, chip or
whole version) x compute-units cell, for lab and field runs together and for each source alone, when the page is not
narrowed by OS, variant, time or a single device.
Narrowed pages query the runs directly.
"""
from django.db import models

from collector.models import Device, ModelVersion


class RollupState(models.Model):
    """When a model version's rollup was computed, and the newest run it had seen."""

    model_version = models.OneToOneField(ModelVersion, on_delete=models.CASCADE, primary_key=True,
                                         related_name="dashboard_rollup")
    max_run_id = models.BigIntegerField(help_text="Highest Run.id (of any version) when the rollup was computed.")
    runs = models.PositiveIntegerField()
    computed_at = models.DateTimeField()
    format = models.PositiveSmallIntegerField(default=1, help_text="dashboard.rollups.FORMAT when computed.")


class CellRollup(models.Model):
    DEVICE, CHIP, VERSION, COVERAGE, DAY = "device", "chip", "version", "coverage", "day"

    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="+")
    level = models.CharField(max_length=8, help_text="device, chip, version (whole version), coverage or day.")
    device = models.ForeignKey(Device, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    chip = models.CharField(max_length=32, blank=True)
    os_major = models.PositiveSmallIntegerField(null=True, blank=True, help_text="coverage level only")
    day = models.DateField(null=True, blank=True, help_text="day level only (UTC date the runs started)")
    source = models.CharField(max_length=8, blank=True, help_text="lab or field; empty: both together")
    compute_units = models.CharField(max_length=20)
    runs = models.PositiveIntegerField()
    stats = models.JSONField(default=dict, help_text="See dashboard.rollups.cell_stats.")

    class Meta:
        indexes = [models.Index(fields=["model_version", "level"], name="rollup_version_level")]

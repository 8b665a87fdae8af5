from django.contrib import admin

from .models import Device, ModelVersion, Project, Run, RunnerToken


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "created_at"]
    filter_horizontal = ["members"]


@admin.register(RunnerToken)
class RunnerTokenAdmin(admin.ModelAdmin):
    list_display = ["project", "name", "kind", "hint", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = ["key_hash", "hint"]


@admin.register(Device)
class DeviceAdmin(admin.ModelAdmin):
    list_display = ["identifier", "name", "chip", "ram_gb", "known"]


admin.site.register(ModelVersion)


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    list_display = ["run_id", "model_version", "device", "compute_units", "status", "started_at"]
    list_filter = ["compute_units", "status", "source", "load_kind"]
    raw_id_fields = ["model_version", "device"]
    readonly_fields = ["predictions_ms"]  # in RunPredictions, not a field of the run

from django.contrib import admin

from .models import Artifact, ProfilingJob


class ArtifactInline(admin.TabularInline):
    model = Artifact
    extra = 0
    fields = ("role", "kind", "label", "path", "size_bytes", "model_version")
    readonly_fields = fields


@admin.register(ProfilingJob)
class ProfilingJobAdmin(admin.ModelAdmin):
    list_display = ("id", "project", "model_version", "input_kind", "compression", "status", "stage", "macos_status", "created_at")
    list_filter = ("status", "macos_status", "input_kind")
    readonly_fields = ("error_stage", "error_message", "macos_message", "task_id")
    inlines = [ArtifactInline]

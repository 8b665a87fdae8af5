from django.contrib import admin

from .models import Alert, AlertNote, AlertSummary, CheckState, NotificationSettings


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "kind", "state", "model", "version", "chip", "device", "compute_units",
                    "metric", "change", "created_at"]
    list_filter = ["project", "kind", "state", "model"]
    raw_id_fields = ["summary", "device", "state_changed_by"]


@admin.register(AlertSummary)
class AlertSummaryAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "model", "version", "state", "created_at"]
    list_filter = ["project", "state", "model"]
    raw_id_fields = ["state_changed_by"]


@admin.register(AlertNote)
class AlertNoteAdmin(admin.ModelAdmin):
    list_display = ["id", "summary", "alert", "author", "state", "created_at"]
    raw_id_fields = ["summary", "alert", "author"]


@admin.register(NotificationSettings)
class NotificationSettingsAdmin(admin.ModelAdmin):
    list_display = ["project", "webhook_url", "email_recipients"]


@admin.register(CheckState)
class CheckStateAdmin(admin.ModelAdmin):
    list_display = ["project", "received_watermark", "last_started_at", "last_finished_at", "last_alerts_created"]

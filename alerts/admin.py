from django.contrib import admin

from .models import Alert, CheckState, NotificationSettings


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "kind", "state", "model", "version", "chip", "device", "compute_units",
                    "metric", "change", "created_at"]
    list_filter = ["project", "kind", "state", "model"]
    raw_id_fields = ["device", "state_changed_by"]


@admin.register(NotificationSettings)
class NotificationSettingsAdmin(admin.ModelAdmin):
    list_display = ["project", "webhook_url", "email_recipients"]


@admin.register(CheckState)
class CheckStateAdmin(admin.ModelAdmin):
    list_display = ["project", "received_watermark", "last_started_at", "last_finished_at", "last_alerts_created"]

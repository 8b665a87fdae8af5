"""The alert as GET /api/v1/alerts shows it (../shared/spec/API.md), and the triage change."""
from rest_framework import serializers

from .models import STATES, Alert


class AlertSerializer(serializers.ModelSerializer):
    device = serializers.SerializerMethodField(help_text="Hardware identifier; null for a whole chip.")
    runs = serializers.SerializerMethodField()
    state_changed_by = serializers.SerializerMethodField()
    load_kind = serializers.SerializerMethodField()

    class Meta:
        model = Alert
        fields = ["id", "kind", "state", "model", "version", "baseline_version", "device", "chip", "compute_units",
                  "metric", "load_kind", "os_major", "baseline_os_major", "baseline", "current", "change", "p_value",
                  "runs", "ops", "created_at", "updated_at", "state_changed_by", "state_changed_at", "withdrawn_at"]

    def get_device(self, alert) -> str | None:
        return alert.device.identifier if alert.device_id else None

    def get_runs(self, alert) -> dict:
        return {"baseline": alert.runs_baseline, "current": alert.runs_current}

    def get_state_changed_by(self, alert) -> str | None:
        return alert.state_changed_by.get_username() if alert.state_changed_by_id else None

    def get_load_kind(self, alert) -> str | None:
        return alert.load_kind or None


class AlertDetailSerializer(AlertSerializer):
    """One alert with the run ids behind its evidence."""

    evidence = serializers.SerializerMethodField()

    class Meta(AlertSerializer.Meta):
        fields = AlertSerializer.Meta.fields + ["evidence"]

    def get_evidence(self, alert) -> dict:
        return {"baseline_run_ids": alert.baseline_run_ids, "current_run_ids": alert.current_run_ids}


class StateChangeSerializer(serializers.Serializer):
    state = serializers.ChoiceField(choices=STATES)

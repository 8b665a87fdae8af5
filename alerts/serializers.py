"""The alert as GET /api/v1/alerts shows it (docs/api.md), its summary (GET /api/v1/alert-summaries),
notes, and the triage change."""
from rest_framework import serializers

from insights.vocabulary import Configuration

from .models import STATES, Alert, AlertNote, AlertSummary


class AlertSerializer(serializers.ModelSerializer):
    device = serializers.SerializerMethodField(help_text="Hardware identifier; null for a whole chip.")
    runs = serializers.SerializerMethodField()
    state_changed_by = serializers.SerializerMethodField()
    load_kind = serializers.SerializerMethodField()
    summary = serializers.IntegerField(source="summary_id", read_only=True,
                                       help_text="The alert summary (project, model, version) it belongs to.")
    optimization_hints = serializers.SerializerMethodField(
        help_text="The series' hints that differ from Apple's defaults ({} for most alerts).")

    class Meta:
        model = Alert
        fields = ["id", "summary", "kind", "state", "model", "version", "baseline_version", "device", "chip", "compute_units",
                  "optimization_hints", "metric", "load_kind", "os_major", "baseline_os_major", "baseline", "current",
                  "change", "p_value", "runs", "ops", "created_at", "updated_at", "state_changed_by", "state_changed_at", "withdrawn_at"]

    def get_optimization_hints(self, alert) -> dict:
        return Configuration(alert.compute_units, alert.specialization_strategy, alert.reshape_frequency).hints

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
    note = serializers.CharField(required=False, allow_blank=True, max_length=4000, default="",
                                 help_text="Why: kept with who set the state and when.")


class NoteSerializer(serializers.ModelSerializer):
    author = serializers.SerializerMethodField()

    class Meta:
        model = AlertNote
        fields = ["alert", "author", "created_at", "state", "text"]

    def get_author(self, note) -> str | None:
        return note.author.get_username() if note.author_id else None


class AlertSummarySerializer(serializers.ModelSerializer):
    """A model version's change: its alerts (ids, those not withdrawn) and triage."""

    project = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    alerts = serializers.SerializerMethodField()
    state_changed_by = serializers.SerializerMethodField()
    notes = NoteSerializer(many=True, read_only=True)

    class Meta:
        model = AlertSummary
        fields = ["id", "project", "model", "version", "state", "state_changed_by", "state_changed_at",
                  "created_at", "alerts", "notes"]

    def get_alerts(self, summary) -> list[int]:
        return sorted(a.id for a in summary.alerts.all() if a.withdrawn_at is None)

    def get_state_changed_by(self, summary) -> str | None:
        return summary.state_changed_by.get_username() if summary.state_changed_by_id else None

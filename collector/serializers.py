"""How stored runs are shown by GET /api/v1/runs: the upload's shape, plus ids, catalogue facts and the summary."""
from rest_framework import serializers

from .models import ComputePlanEntry, Run


class PlanEntrySerializer(serializers.ModelSerializer):
    type = serializers.CharField(source="op_type")

    class Meta:
        model = ComputePlanEntry
        fields = ["op", "type", "device", "estimated_cost"]


class RunSerializer(serializers.ModelSerializer):
    project = serializers.CharField(source="project.slug")
    model = serializers.SerializerMethodField()
    device = serializers.SerializerMethodField()
    failure = serializers.SerializerMethodField()
    timings_ms = serializers.SerializerMethodField()
    predictions = serializers.SerializerMethodField()
    optimization_hints = serializers.SerializerMethodField()

    class Meta:
        model = Run
        fields = [
            "id", "run_id", "project", "source", "model", "device", "app_build", "compute_units", "optimization_hints", "variant",
            "started_at", "received_at", "status", "failure", "load_kind", "timings_ms", "predictions",
            "peak_memory_mb", "thermal_state", "has_compute_plan",
        ]

    def get_model(self, run) -> dict:
        mv = run.model_version
        return {"name": mv.name, "version": mv.version, "sha256": mv.sha256 or None, "format": mv.format,
                "precision": mv.precision, "size_bytes": mv.size_bytes}

    def get_optimization_hints(self, run) -> dict:
        return {"specialization_strategy": run.specialization_strategy, "reshape_frequency": run.reshape_frequency}

    def get_device(self, run) -> dict:
        d = run.device
        return {"identifier": d.identifier, "os_version": run.os_version, "name": d.name or None,
                "chip": d.chip or None, "ram_gb": d.ram_gb, "known": d.known}

    def get_failure(self, run) -> dict | None:
        return {"stage": run.failure_stage, "message": run.failure_message} if run.failed else None

    def get_timings_ms(self, run) -> dict:
        return {"decrypt": run.decrypt_ms, "compile": run.compile_ms, "load": run.load_ms,
                "first_prediction": run.first_prediction_ms}

    def get_predictions(self, run) -> dict:
        """The stored summary of predictions_ms (the raw series is in the run's detail)."""
        return {"count": run.prediction_count, "min": run.prediction_min_ms, "median": run.prediction_median_ms,
                "p90": run.prediction_p90_ms, "p99": run.prediction_p99_ms, "mean": run.prediction_mean_ms,
                "std": run.prediction_std_ms}


class RunDetailSerializer(RunSerializer):
    # Run.predictions_ms reads the side table (RunPredictions); the view selects it with the run.
    predictions_ms = serializers.ListField(child=serializers.FloatField(), read_only=True,
                                           help_text="warm predictions in order, after the first one")
    compute_plan = PlanEntrySerializer(many=True, read_only=True)

    class Meta(RunSerializer.Meta):
        fields = RunSerializer.Meta.fields + ["predictions_ms", "compute_plan"]

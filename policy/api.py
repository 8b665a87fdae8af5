"""GET /api/v1/policy and GET /api/v1/policy/export (the wire contract in ../shared/spec/API.md).

Thin views: parse and validate the query (a 400 names the bad parameter), find the model version among the
caller's projects (404 otherwise), and answer what ``policy.evidence`` computes. Runner tokens, policy
tokens (read-only, shipped in apps) and logged-in members may call both; a token only ever sees its own project.
"""
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from collector.auth import PolicyReader, visible_projects
from collector.models import ModelVersion
from insights.vocabulary import COMPUTE_UNITS, LOAD_KINDS
from perfboard.conf import policy_settings

from .evidence import default_policy, default_predictions_per_session, policy_for_device, policy_table
from .queries import what_would_change

MAX_PREDICTIONS_PER_SESSION = 10_000_000


class ModelQuery(serializers.Serializer):
    """Parameters shared by the policy and its export."""

    model = serializers.CharField(max_length=200, help_text="Model name, e.g. face-retouch.")
    version = serializers.CharField(max_length=64, help_text="Model version, e.g. 3.2.0.")
    project = serializers.SlugField(required=False, help_text="Project slug; needed only by a dashboard user who "
                                                              "has the same model name in several projects.")
    predictions_per_session = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_PREDICTIONS_PER_SESSION,
        help_text="Predictions an app makes per model load (the workload); default: "
                  "PERFBOARD['POLICY_PREDICTIONS_PER_SESSION'], 100 unless configured.")
    load_kind = serializers.ChoiceField(
        LOAD_KINDS, required=False,
        help_text="Price every unit's load as this kind (cold, cached, in_memory) instead of the observed mix. "
                  "in_memory is the case of a model decrypted at launch and never stored on disk.")
    compute_units = serializers.CharField(
        required=False, help_text="Comma-separated units the app is willing to use (default: all four); "
                                  "cpuOnly always ends the fallback chain.")

    def validate_compute_units(self, value):
        units = [u.strip() for u in value.split(",") if u.strip()]
        unknown = [u for u in units if u not in COMPUTE_UNITS]
        if unknown or not units:
            raise serializers.ValidationError(
                f"unknown compute units {', '.join(unknown) or repr(value)}; use {', '.join(COMPUTE_UNITS)}")
        return [u for u in COMPUTE_UNITS if u in units]


class PolicyQuery(ModelQuery):
    device = serializers.CharField(max_length=64, help_text="Apple hardware identifier, e.g. iPhone15,2.")
    os_version = serializers.RegexField(
        r"^\d{1,3}(\.\d{1,3}){0,2}$", required=False, max_length=32,
        error_messages={"invalid": "must look like 18.1.1"},
        help_text="The device's OS version; evidence is first restricted to the same major version.")


class ExportQuery(ModelQuery):
    devices = serializers.ChoiceField(
        ["catalogue", "measured"], required=False, default="catalogue",
        help_text="catalogue: every known identifier (those without runs get their chip's policy or the "
                  "default); measured: only devices with runs of this model version.")


def parse(serializer_class, request):
    query = serializer_class(data=request.query_params)
    query.is_valid(raise_exception=True)
    q = dict(query.validated_data)
    q.setdefault("predictions_per_session", default_predictions_per_session())
    q.setdefault("compute_units", list(COMPUTE_UNITS))
    q.setdefault("load_kind", None)
    return q


def find_model_version(request, q) -> ModelVersion:
    """The model version among the caller's projects; 404 naming what is unknown."""
    projects = visible_projects(request)
    if q.get("project"):
        projects = projects.filter(slug=q["project"])
    versions = ModelVersion.objects.filter(project__in=projects, name=q["model"])
    matches = list(versions.filter(version=q["version"]).select_related("project")[:2])
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise exceptions.ValidationError(
            {"project": [f"model {q['model']} {q['version']} exists in several of your projects; "
                         f"name one with project=<slug>"]})
    known = sorted(set(versions.values_list("version", flat=True)))
    if not known:
        raise exceptions.NotFound(f"unknown model {q['model']!r}: no runs of it were uploaded to this project")
    raise exceptions.NotFound(f"model {q['model']!r} has no version {q['version']!r}; "
                              f"known versions: {', '.join(known)}")


def os_major(os_version: str | None) -> int | None:
    return int(os_version.split(".")[0]) if os_version else None


POLICY_EXAMPLE = {
    "compute_units": "cpuAndNeuralEngine", "fallback": ["cpuAndGPU", "cpuOnly"], "basis": "device",
    "reason": "fastest expected session for 300 predictions per session among units with at least 10 runs and an "
              "observed failure rate of at most 0.5%, measured on this device",
    "evidence": {"cpuAndNeuralEngine": {"runs": 412, "crash_rate": 0.0, "crash_rate_upper": 0.0092,
                                        "load_ms_median": 1430.0, "first_prediction_ms_median": 95.0,
                                        "prediction_ms_median": 12.0, "expected_session_ms": 5113.0,
                                        "eligible": True, "note": ""}},
    "what_would_change": [{"compute_units": "all", "configuration": "all", "more_runs": 3, "clean": False,
                           "level": "device", "runs": 7, "failures": 0, "speedup": 1.08,
                           "text": "3 more runs of all on iPhone 14 Pro: it is 1.1× faster at this workload by its "
                                   "7 runs"}],
}


class PolicyView(APIView):
    """Which MLComputeUnits a device should use for a model version, with its fallback chain and evidence."""

    permission_classes = [PolicyReader]

    @extend_schema(
        parameters=[PolicyQuery],
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT,
                                        description="the policy: compute_units, fallback (ends at cpuOnly), basis "
                                                    "(device, chip or default), reason, evidence per unit, and "
                                                    "what_would_change: the runs that would change the answer "
                                                    "(as the policy page's last column)",
                                        examples=[OpenApiExample("a device with its own evidence",
                                                                 value=POLICY_EXAMPLE)]),
                   400: OpenApiResponse(description="a bad parameter, named as the key of the answer"),
                   401: OpenApiResponse(description="no valid token or login"),
                   404: OpenApiResponse(description="unknown model or version in the caller's project")},
    )
    def get(self, request):
        q = parse(PolicyQuery, request)
        model_version = find_model_version(request, q)
        result = policy_for_device(model_version, q["device"], q["predictions_per_session"], q["load_kind"],
                                   os_major(q.get("os_version")), q["compute_units"])
        device = result.device
        return Response({
            **result.policy.to_dict(),
            "model": model_version.name,
            "version": model_version.version,
            "device": {"identifier": q["device"], "name": device.name if device else "",
                       "chip": device.chip if device else "", "known": bool(device and device.known)},
            "predictions_per_session": q["predictions_per_session"],
            "load_kind": q["load_kind"],
            "os_scope": result.os_scope,
            "what_would_change": what_would_change(result),
        })


class PolicyExportView(APIView):
    """The whole policy table of a model version, one entry per device identifier, for shipping in an app."""

    permission_classes = [PolicyReader]

    @extend_schema(
        parameters=[ExportQuery],
        responses={200: OpenApiResponse(description="{'devices': {identifier: {compute_units, fallback, basis, "
                                                    "chip, name, reason}}, 'default': {...}, ...}"),
                   400: OpenApiResponse(description="a bad parameter, named as the key of the answer"),
                   404: OpenApiResponse(description="unknown model or version in the caller's project")},
    )
    def get(self, request):
        q = parse(ExportQuery, request)
        model_version = find_model_version(request, q)
        conf = policy_settings()
        n = q["predictions_per_session"]
        table = policy_table(model_version, n, q["load_kind"], q["devices"], q["compute_units"], conf)
        fallback = default_policy(n, conf)
        return Response({
            "model": model_version.name,
            "version": model_version.version,
            "project": model_version.project.slug,
            "predictions_per_session": n,
            "load_kind": q["load_kind"],
            "generated_at": timezone.now().isoformat().replace("+00:00", "Z"),
            "thresholds": {"min_runs": conf.min_runs, "max_failure_rate": conf.max_failure_rate},
            "default": {**_answer(fallback), "basis": "default", "reason": "for identifiers missing from this table"},
            "devices": {
                row.identifier: {"name": row.device.name, "chip": row.device.chip, **_answer(row.policy),
                                 "basis": row.policy.basis, "reason": row.policy.reason}
                for row in table
            },
        })


def _answer(policy) -> dict:
    """What an app sets: the unit and its hints, and the chain (unit names, and with hints)."""
    answer = policy.to_dict()
    return {k: answer[k] for k in ("compute_units", "optimization_hints", "fallback", "fallback_configurations")}

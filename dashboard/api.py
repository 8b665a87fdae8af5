"""The dashboard's numbers for scripts and notebooks (the wire contract: docs/api.md).

GET /api/v1/coverage: which (device, OS major, compute units) cells of a model's versions have too few runs, so a lab
runner can fetch what to benchmark next. Same data as the fleet page's coverage matrix.

GET /api/v1/stats: per chip or device and compute units, runs, failures and a metric's quantiles: the numbers the
overview and compare pages plot, read with the pages' filters (dashboard.filters) through the same query
(dashboard.queries.device_unit_stats, i.e. collector.evidence.gather), so a page and the API cannot disagree.
"""
from django.core.exceptions import ValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from collector.auth import ProjectReader, visible_projects
from collector.filters import StrictBooleanField, blank_parameters
from collector.models import Device, ModelVersion
from insights.vocabulary import COMPUTE_UNITS, METRICS, SOURCES, SPECIALIZATION_STRATEGIES

from .filters import Filters
from .queries import STATS_QUANTILES, Scope, coverage, device_unit_stats, min_runs, resolve_scope


FILTER_PARAMETERS = [
    OpenApiParameter("device", str, description="hardware identifier, e.g. iPhone15,2 (one Perfboard knows)"),
    OpenApiParameter("chip", str, description="chip, e.g. A16 Bionic"),
    OpenApiParameter("compute_units", str, many=True, enum=list(COMPUTE_UNITS), explode=True,
                     description="repeat for several"),
    OpenApiParameter("os_min", int, description="lowest OS major version"),
    OpenApiParameter("os_max", int, description="highest OS major version"),
    OpenApiParameter("source", str, enum=list(SOURCES)),
    OpenApiParameter("variant", str, description="the runs' variant (\"none\": runs without one)"),
    OpenApiParameter("specialization_strategy", str, enum=list(SPECIALIZATION_STRATEGIES),
                     description="only runs with this MLOptimizationHints specializationStrategy (one configuration's "
                                 "runs; without it, every strategy's runs together)"),
    OpenApiParameter("started_after", OpenApiTypes.DATETIME, description="runs started at or after (ISO 8601)"),
    OpenApiParameter("started_before", OpenApiTypes.DATETIME, description="runs started before (ISO 8601)"),
]
COVERAGE_SCOPE = [
    OpenApiParameter("project", str, description="project slug (a runner token reads its own project)"),
    OpenApiParameter("model", str, description="model name; default: every model of the project"),
    OpenApiParameter("version", str, description="model version; default: every version of the model"),
    OpenApiParameter("under_sampled", bool, description="only cells with fewer runs than min_runs"),
]
COVERAGE_PARAMETERS = {p.name for p in COVERAGE_SCOPE + FILTER_PARAMETERS}


def parameter_errors(query, filters: Filters, names) -> dict[str, list[str]]:
    """{parameter: [messages]} of the pages' filters that do not parse, and of ``names`` given blank."""
    errors: dict[str, list[str]] = {}
    for error in filters.errors:
        name, _, message = error.partition(": ")
        errors.setdefault(name, []).append(message)
    for name, messages in blank_parameters(query, names).items():
        errors.setdefault(name, messages)
    return errors


class Coverage(APIView):
    permission_classes = [ProjectReader]

    @extend_schema(
        parameters=COVERAGE_SCOPE + FILTER_PARAMETERS,
        responses={200: {"type": "object"}},
    )
    def get(self, request):
        filters = Filters.from_query(request.query_params)
        errors = parameter_errors(request.query_params, filters, COVERAGE_PARAMETERS)
        try:
            under_sampled = StrictBooleanField().clean(request.query_params.get("under_sampled"))
        except ValidationError as exc:
            errors.setdefault("under_sampled", exc.messages)
        if errors:
            return Response(errors, status=400)
        scope = resolve_scope(visible_projects(request), filters)
        if scope.project is None:
            return Response({"detail": "no such project"}, status=404)
        if filters.version and scope.model_version is None:
            return Response({"detail": "no such model version"}, status=404)
        span = "version" if filters.version else ("model" if filters.model else "project")
        cells = coverage(scope, span)
        if under_sampled:
            cells = [c for c in cells if c.under_sampled]
        # Most needed first: what a lab runner should benchmark next.
        cells.sort(key=lambda c: (c.runs, c.model, c.version, c.chip_rank or 1e9, c.device, c.os_major))
        return Response({"project": scope.project.slug, "min_runs": min_runs(),
                         "cells": [c.to_dict() for c in cells]})


# --- GET /api/v1/stats ------------------------------------------------------------------------------------------

class StatsQuery(serializers.Serializer):
    """What the numbers are of; the filters are the pages' (dashboard.filters.Filters)."""

    model = serializers.CharField(max_length=200, help_text="Model name, e.g. face-retouch.")
    version = serializers.CharField(max_length=64, help_text="Model version, e.g. 3.2.0.")
    metric = serializers.ChoiceField(
        list(METRICS), help_text="; ".join(f"{m.key}: {m.label} ({m.unit})" for m in METRICS.values()))
    by = serializers.ChoiceField(["chip", "device"], required=False, default="chip",
                                 help_text="one row per chip (default) or per device identifier, and compute units")
    project = serializers.SlugField(required=False, help_text="Project slug; needed only by a member who has the "
                                                              "same model version in several projects.")


class StatsRow(serializers.Serializer):
    chip = serializers.CharField(required=False, help_text="by=chip: the chip (\"\" for devices of unknown chip)")
    device = serializers.CharField(required=False, help_text="by=device: the hardware identifier")
    name = serializers.CharField(required=False, help_text="by=device: the device's name")
    compute_units = serializers.ChoiceField(COMPUTE_UNITS)
    runs = serializers.IntegerField(help_text="every run of the group, all statuses and load kinds")
    failures = serializers.IntegerField(help_text="runs that did not end ok (crash, oom, error, timeout)")
    failure_rate = serializers.FloatField(help_text="failures / runs")
    timed_runs = serializers.IntegerField(help_text="successful runs with the metric (for load_*: of that load "
                                                    "kind): the runs the quantiles are of")
    median = serializers.FloatField(allow_null=True, help_text="null without timed runs")
    p10 = serializers.FloatField(allow_null=True)
    p90 = serializers.FloatField(allow_null=True)


class StatsAnswer(serializers.Serializer):
    model = serializers.CharField()
    version = serializers.CharField()
    metric = serializers.ChoiceField(list(METRICS))
    unit = serializers.CharField(help_text="ms or MB")
    by = serializers.ChoiceField(["chip", "device"])
    rows = StatsRow(many=True, help_text="oldest chip first, then compute units from cpuOnly to all")


STATS_EXAMPLE = {"model": "face-retouch", "version": "3.2.0", "metric": "load_cold", "unit": "ms", "by": "chip",
                 "rows": [{"chip": "A16 Bionic", "compute_units": "all", "runs": 412, "failures": 3,
                           "failure_rate": 0.0073, "timed_runs": 380, "median": 1430.0, "p10": 1290.0,
                           "p90": 1610.0}]}

STATS_PARAMETERS = {*StatsQuery().fields, *(p.name for p in FILTER_PARAMETERS)}


class BadParameter(Exception):
    def __init__(self, name, message):
        self.errors = {name: [message]}


def stats_model_version(request, model: str, version: str, project: str | None) -> ModelVersion | None:
    """The model version among the caller's projects (None: ?project= names none of them); BadParameter naming
    model, version or project when they name nothing, or more than one version."""
    projects = visible_projects(request)
    if project:
        projects = projects.filter(slug=project)
        if not projects.exists():
            return None
    versions = ModelVersion.objects.filter(project__in=projects, name=model)
    matches = list(versions.filter(version=version).select_related("project")[:2])
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise BadParameter("project", f"model {model} {version} exists in several of your projects; name one with "
                                      f"project=<slug>")
    known = sorted(set(versions.values_list("version", flat=True)))
    if not known:
        raise BadParameter("model", f"unknown model {model!r}: no runs of it were uploaded to your projects")
    raise BadParameter("version", f"model {model!r} has no version {version!r}; known versions: {', '.join(known)}")


class Stats(APIView):
    """Runs, failures and a metric's quantiles per chip (or device) and compute units of one model version."""

    permission_classes = [ProjectReader]

    @extend_schema(
        parameters=[StatsQuery, *FILTER_PARAMETERS],
        responses={200: OpenApiResponse(StatsAnswer, description="one row per (chip or device, compute units) with "
                                                                 "runs", examples=[OpenApiExample("by chip",
                                                                                                  value=STATS_EXAMPLE)]),
                   400: OpenApiResponse(OpenApiTypes.OBJECT,
                                        description="a parameter that is invalid or names nothing (unknown model, "
                                                    "version, metric, by, compute units, device), named as the key "
                                                    "of the answer"),
                   401: OpenApiResponse(OpenApiTypes.OBJECT, description="no valid token or login"),
                   403: OpenApiResponse(OpenApiTypes.OBJECT, description="a policy token (it may read policies "
                                                                         "only)"),
                   404: OpenApiResponse(OpenApiTypes.OBJECT, description="?project= names none of the caller's "
                                                                         "projects")},
    )
    def get(self, request):
        query = StatsQuery(data=request.query_params)
        errors = {} if query.is_valid() else dict(query.errors)
        filters = Filters.from_query(request.query_params)
        for name, messages in parameter_errors(request.query_params, filters, STATS_PARAMETERS).items():
            errors.setdefault(name, messages)
        if not errors and filters.device and not Device.objects.filter(identifier=filters.device).exists():
            errors["device"] = [f"unknown device {filters.device!r}"]
        if errors:
            return Response(errors, status=400)
        q = query.validated_data
        try:
            model_version = stats_model_version(request, q["model"], q["version"], q.get("project"))
        except BadParameter as exc:
            return Response(exc.errors, status=400)
        if model_version is None:
            return Response({"detail": f"no project {q['project']!r} among yours"}, status=404)
        scope = Scope(filters=filters, project=model_version.project, model_version=model_version)
        metric, by = METRICS[q["metric"]], q["by"]
        stats = device_unit_stats(scope.runs(), (metric.key,), by, STATS_QUANTILES)
        rows = []
        for info, units in stats.items():
            group = {"chip": info.chip} if by == "chip" else {"device": info.identifier, "name": info.name}
            for unit in COMPUTE_UNITS:
                s = units.get(unit)
                if s is None:
                    continue
                t = s.metrics[metric.key]
                rows.append({**group, "compute_units": unit, "runs": s.runs, "failures": s.failure_count,
                             "failure_rate": s.failure_rate, "timed_runs": t.n,
                             **{name: t[name] for name in STATS_QUANTILES}})
        return Response({"model": model_version.name, "version": model_version.version, "metric": metric.key,
                         "unit": metric.unit, "by": by, "rows": rows})

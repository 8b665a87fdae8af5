"""GET /api/v1/coverage: which (device, OS major, compute units) cells of a model's versions have too few runs,
so a lab runner can fetch what to benchmark next. Same data as the fleet page's coverage matrix."""
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from collector.auth import ProjectReader, visible_projects

from .filters import Filters
from . import rollups
from .queries import min_runs, resolve_scope


class Coverage(APIView):
    permission_classes = [ProjectReader]

    @extend_schema(
        parameters=[
            OpenApiParameter("project", str, description="project slug (a runner token reads its own project)"),
            OpenApiParameter("model", str, description="model name; default: every model of the project"),
            OpenApiParameter("version", str, description="model version; default: every version of the model"),
            OpenApiParameter("under_sampled", bool, description="only cells with fewer runs than min_runs"),
            OpenApiParameter("device", str), OpenApiParameter("chip", str), OpenApiParameter("os_min", int),
            OpenApiParameter("os_max", int), OpenApiParameter("compute_units", str, many=True),
            OpenApiParameter("source", str, enum=["lab", "field"]), OpenApiParameter("variant", str),
        ],
        responses={200: {"type": "object"}},
    )
    def get(self, request):
        filters = Filters.from_query(request.query_params)
        if filters.errors:
            return Response({"detail": "invalid filters", "errors": list(filters.errors)}, status=400)
        scope = resolve_scope(visible_projects(request), filters)
        if scope.project is None:
            return Response({"detail": "no such project"}, status=404)
        if filters.version and scope.model_version is None:
            return Response({"detail": "no such model version"}, status=404)
        span = "version" if filters.version else ("model" if filters.model else "project")
        cells = rollups.coverage(scope, span)
        if request.query_params.get("under_sampled", "").lower() in ("1", "true", "yes"):
            cells = [c for c in cells if c.under_sampled]
        # Most needed first: what a lab runner should benchmark next.
        cells.sort(key=lambda c: (c.runs, c.model, c.version, c.chip_rank or 1e9, c.device, c.os_major))
        return Response({"project": scope.project.slug, "min_runs": min_runs(),
                         "cells": [c.to_dict() for c in cells]})

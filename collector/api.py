"""POST/GET /api/v1/runs (the wire contract in ../shared/spec/API.md)."""
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.response import Response

from .auth import ProjectReader, Runner, visible_projects
from .filters import RunFilter
from .ingest import Conflict, Invalid, store_runs
from .models import Run
from .schema import BatchIn, RunIn
from .serializers import RunDetailSerializer, RunSerializer
from .upload import UploadError, parse_runs, read_body


def _errors(detail, errors):
    return {"detail": detail, "errors": errors or {}}


class RunListCreate(generics.ListAPIView):
    serializer_class = RunSerializer
    filterset_class = RunFilter

    def get_permissions(self):
        return [Runner()] if self.request.method == "POST" else [ProjectReader()]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no caller
            return Run.objects.none()
        return (
            Run.objects.filter(project__in=visible_projects(self.request))
            .select_related("project", "model_version", "device")
            .defer("predictions_ms")
            .order_by("-started_at", "-id")
        )

    @extend_schema(
        request={"application/json": {"oneOf": [RunIn.model_json_schema(), BatchIn.model_json_schema()]}},
        responses={201: OpenApiResponse(description="stored: one entry per run, created or duplicate"),
                   200: OpenApiResponse(description="every run was already stored"),
                   400: OpenApiResponse(description="field errors per run index; nothing stored"),
                   401: OpenApiResponse(description="no valid runner token"),
                   409: OpenApiResponse(description="a run_id is stored with a different body"),
                   413: OpenApiResponse(description="body or batch over the limit")},
    )
    def post(self, request):
        try:
            runs, batch = parse_runs(read_body(request._request))
            outcomes = store_runs(request.user.project, runs)
        except UploadError as exc:
            return Response(_errors(exc.detail, exc.errors), status=exc.status)
        except Invalid as exc:
            return Response(_errors("runs conflict with what is stored; nothing was stored", exc.errors), status=400)
        except Conflict as exc:
            return Response({"detail": str(exc), "run_ids": exc.run_ids}, status=status.HTTP_409_CONFLICT)
        created = sum(o.status == "created" for o in outcomes)
        code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        entries = [{"index": o.index, "run_id": o.run_id, "id": o.id, "status": o.status} for o in outcomes]
        if not batch:
            return Response(entries[0], status=code)
        return Response({"created": created, "duplicate": len(outcomes) - created, "runs": entries}, status=code)


class RunDetail(generics.RetrieveAPIView):
    serializer_class = RunDetailSerializer
    lookup_field = "run_id"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Run.objects.none()
        return (
            Run.objects.filter(project__in=visible_projects(self.request))
            .select_related("project", "model_version", "device")
            .prefetch_related("compute_plan")
        )

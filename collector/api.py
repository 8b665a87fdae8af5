"""POST/GET /api/v1/runs (the wire contract in docs/api.md)."""
from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.plumbing import ResolvedComponent
from drf_spectacular.utils import OpenApiResponse, extend_schema
from pydantic import RootModel
from rest_framework import generics, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response

from .auth import ProjectReader, Runner, visible_projects
from .filters import RunFilter
from .ingest import Conflict, Invalid, store_runs
from .models import Run
from .pagination import RunListPagination
from .schema import BatchIn, RunIn
from .serializers import RunDetailSerializer, RunSerializer
from .upload import UploadError, collection_paused, parse_runs, read_body


class RunUpload(RootModel[RunIn | BatchIn]):
    """The body of POST /api/v1/runs: one run, or {"runs": [run, ...]}."""


class RunUploadSchema(OpenApiSerializerExtension):
    """The upload body in the OpenAPI document as pydantic validates it. pydantic's own JSON schema refers to its
    nested models as "#/$defs/…", which does not resolve once embedded in the document: they become components."""

    target_class = RunUpload
    priority = 1  # before drf-spectacular's generic pydantic extension (serialization mode, anyOf)

    def get_name(self, auto_schema, direction):
        return "RunUpload"

    def map_serializer(self, auto_schema, direction):
        schema = RunUpload.model_json_schema(ref_template="#/components/schemas/{model}", mode="validation")
        for name, sub in schema.pop("$defs", {}).items():
            auto_schema.registry.register_on_missing(
                ResolvedComponent(name=name, type=ResolvedComponent.SCHEMA, object=name, schema=_openapi_30(sub)))
        # RunIn and BatchIn refuse unknown fields, so a body is exactly one of them.
        return {"oneOf": schema["anyOf"], "description": RunUpload.__doc__}


def _openapi_30(node):
    """pydantic's JSON Schema (2020-12) as OpenAPI 3.0, the document's version: `anyOf: [X, {"type": "null"}]`
    becomes X with `nullable: true` (through allOf when X is a $ref, whose siblings 3.0 ignores)."""
    if isinstance(node, list):
        return [_openapi_30(v) for v in node]
    if not isinstance(node, dict):
        return node
    node = {k: (v if k in ("default", "enum", "examples") else _openapi_30(v)) for k, v in node.items()}
    alternatives = node.get("anyOf", [])
    if {"type": "null"} in alternatives:
        rest = [a for a in alternatives if a != {"type": "null"}]
        siblings = {k: v for k, v in node.items() if k != "anyOf"}
        if len(rest) == 1 and "$ref" in rest[0]:
            return {"allOf": rest, **siblings, "nullable": True}
        if len(rest) == 1:
            return {**rest[0], **siblings, "nullable": True}
        return {"anyOf": rest, **siblings, "nullable": True}
    return node


def _errors(detail, errors):
    return {"detail": detail, "errors": errors or {}}


class RunListCreate(generics.ListAPIView):
    serializer_class = RunSerializer
    filterset_class = RunFilter
    pagination_class = RunListPagination

    def get_permissions(self):
        return [Runner()] if self.request.method == "POST" else [ProjectReader()]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no caller
            return Run.objects.none()
        # The projects' ids, not a subquery: so a project's runs are walked in time order (see NamedRowFilter).
        projects = list(visible_projects(self.request).values_list("pk", flat=True))
        return (
            (Run.objects.filter(project_id__in=projects) if projects else Run.objects.none())
            .select_related("project", "model_version", "device")
            .order_by("-started_at", "-id")
        )

    @extend_schema(
        request={"application/json": RunUpload},
        responses={201: OpenApiResponse(description="stored: one entry per run, created or duplicate"),
                   200: OpenApiResponse(description="every run was already stored"),
                   400: OpenApiResponse(description="field errors per run index; nothing stored"),
                   401: OpenApiResponse(description="no valid runner token"),
                   409: OpenApiResponse(description="a run_id is stored with a different body"),
                   413: OpenApiResponse(description="body or batch over the limit")},
    )
    def post(self, request):
        try:
            with collection_paused():
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
    """One run by its run_id. A run_id is unique within a project only: a member of several projects that hold the
    same run_id names the project with `?project=<slug>`."""

    serializer_class = RunDetailSerializer
    lookup_field = "run_id"

    def get_object(self):
        runs = self.get_queryset().filter(run_id=self.kwargs["run_id"])
        if slug := self.request.query_params.get("project"):
            if "\x00" in slug:
                raise ValidationError({"project": "must not contain NUL characters"})
            runs = runs.filter(project__slug=slug)
        found = list(runs.order_by("id")[:2])
        if not found:
            raise NotFound("no run with this run_id in your projects")
        if len(found) > 1:
            raise ValidationError({"project": "this run_id is in several of your projects: name one with ?project="})
        self.check_object_permissions(self.request, found[0])
        return found[0]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Run.objects.none()
        return (
            Run.objects.filter(project__in=visible_projects(self.request))
            .select_related("project", "model_version", "device", "prediction_series")
            .prefetch_related("compute_plan")
        )

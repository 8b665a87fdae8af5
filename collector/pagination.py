from django.db import connection
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination

from . import evidence
from .models import Run


class NewestRuns:
    """GET /api/v1/runs's filtered runs as its pages slice and count them: counted by the evidence query (sketch rows
    where they answer), not COUNT(*); a page of several projects' runs taken from each project's newest runs.

    PostgreSQL walks one project's runs in time order on its (project, started_at) index, but not the runs of a list
    of projects: it sorted all of them for each page (a member of three projects, 1.11M runs: 650 ms a first page,
    1.1 s the 50th). So a page over several projects is the union of each project's first ``stop`` runs in the list's
    order, sorted once more and cut: every project's walk stops at the page's end."""

    def __init__(self, runs):
        self.runs = runs

    def count(self) -> int:
        return evidence.count(self.runs)

    def __getitem__(self, page: slice) -> list:
        if self.runs.query.is_empty():  # a filter no run can match (Django's union of empty parts is no queryset)
            return []
        projects = _projects(self.runs.query.where)
        if not projects or len(projects) < 2 or not connection.features.supports_slicing_ordering_in_compound:
            return list(self.runs[page])  # (SQLite cannot order and limit each part of a union)
        order = self.runs.query.order_by
        columns = [name.lstrip("-") for name in order]
        first, *rest = [self.runs.filter(project_id=project).values_list(*columns)[:page.stop] for project in projects]
        ids = [row[columns.index("id")] for row in first.union(*rest, all=True).order_by(*order)[page]]
        rows = self.runs.in_bulk(ids)
        return [rows[pk] for pk in ids]


def _projects(where) -> list | None:
    """The project ids a query's conditions allow (each ``project_id IN (...)`` or ``=`` they AND narrows them), None
    where they name none. A part for a project the filters exclude would cost a plan of its own: ~45 ms at 1M runs."""
    if where.negated or (where.connector != "AND" and len(where.children) > 1):
        return None
    allowed = None
    for node in where.children:
        if hasattr(node, "children"):
            ids = _projects(node)
        elif getattr(getattr(node, "lhs", None), "target", None) is Run._meta.get_field("project") and \
                node.lookup_name in ("in", "exact"):
            ids = list(node.rhs) if node.lookup_name == "in" else [node.rhs]
        else:
            continue
        if ids is not None:
            allowed = ids if allowed is None else [pk for pk in allowed if pk in ids]
    return allowed


class RunPagination(PageNumberPagination):
    """Pages of 100 (page_size up to 1,000). ``page`` and ``page_size`` must be whole numbers (page_size from 1 to
    1,000), else a 400 naming them: DRF would quietly answer another page size, or read ``page=last``, and a script
    would page through something else than it asked for. A page past the end stays a 404."""

    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000
    last_page_strings = ()

    def paginate_queryset(self, queryset, request, view=None):
        for name, top in ((self.page_query_param, None), (self.page_size_query_param, self.max_page_size)):
            raw = request.query_params.get(name)
            if raw is not None and not _whole_number(raw, top):
                raise ValidationError({name: [f"must be a whole number from 1 to {top}" if top
                                              else "must be a whole number from 1"]})
        return super().paginate_queryset(queryset, request, view)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            parameter["schema"]["minimum"] = 1
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"]["maximum"] = self.max_page_size
        return parameters


def _whole_number(raw: str, top: int | None) -> bool:
    return raw.isascii() and raw.isdigit() and len(raw) < 10 and 1 <= int(raw) <= (top or 10**9)

from datetime import datetime, time, timedelta, timezone

from django.db import connection
from django.db.models import Q
from django.db.models.expressions import RawSQL
from django.db.models.sql.where import AND, WhereNode
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.utils.urls import remove_query_param, replace_query_param

from . import evidence
from .models import Run

# From this offset on, a page by number skips whole days counted by the sketch rows before it walks the rest: below
# it, OFFSET over the index costs less than the days' counts (a few ms).
SEEK_DAYS_FROM = 10_000


class NewestRuns:
    """GET /api/v1/runs's filtered runs as its pages slice and count them: counted by the evidence query (sketch rows
    where they answer), not COUNT(*); a page's ids read first (from the index alone where the filters allow), then
    its rows; a page of several projects' runs taken from each project's newest runs.

    PostgreSQL walks one project's runs in time order on its (project, started_at, id) index, but not the runs of a list
    of projects: it sorted all of them for each page (a member of three projects, 1.11M runs: 650 ms a first page,
    1.1 s the 50th). So a page over several projects joins each project, laterally, to its first ``stop`` runs in
    the list's order (one index walk a project, stopping at the page's end), and sorts those. One statement whatever
    the number of projects: a union of a part per project cost its plan (500 projects: 3.4 s)."""

    def __init__(self, runs, after: tuple | None = None):
        self.runs = runs
        self.after = after

    def count(self) -> int:
        return evidence.count(self.runs)

    def __getitem__(self, page: slice) -> list:
        runs = self.runs
        if self.after is not None:  # the runs after that (started_at, id): seek to it instead of walking an offset
            started, pk = self.after
            runs = runs.filter(Q(started_at__lte=started) & (Q(started_at__lt=started) | Q(id__lt=pk)))
            page = slice(0, page.stop - page.start)
        elif page.start >= SEEK_DAYS_FROM and connection.vendor == "postgresql":
            runs, page = _from_its_day(runs, page)
        projects, others = _by_project(runs.query.where)
        if runs.query.is_empty() or projects == []:
            return []
        if projects is None or connection.vendor != "postgresql":
            return list(runs[page])  # (SQLite has no LATERAL; an embedded database is small)
        if len(projects) == 1:  # the page's ids from the index alone where the filters are the project's
            ids = list(runs.values_list("id", flat=True)[page])
        else:
            ids = self._newest_of_each(runs, projects, others, page)
        rows = runs.in_bulk(ids)
        return [rows[pk] for pk in ids]

    @staticmethod
    def _newest_of_each(runs, projects, others, page: slice) -> list[int]:
        order = runs.query.order_by
        columns = [name.lstrip("-") for name in order]
        # Each project's walk without the list of projects (a list as an index condition is sorted again at every
        # walk: 5,000 projects, 700 ms), which the projects joined stand for.
        newest = runs.all()
        newest.query.where = others
        newest = newest.filter(project_id=RawSQL("projects.id", ())).values_list(*columns)[:page.stop]
        sql, params = newest.query.sql_with_params()
        by = ", ".join(f'newest.{connection.ops.quote_name(c)}{" DESC" * n.startswith("-")}'
                       for c, n in zip(columns, order))
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT newest.id FROM unnest(%s::bigint[]) AS projects(id) CROSS JOIN LATERAL ({sql}) "
                           f"AS newest ORDER BY {by} LIMIT %s OFFSET %s",
                           [projects, *params, page.stop - page.start, page.start])
            return [pk for pk, in cursor.fetchall()]


def _from_its_day(runs, page: slice) -> tuple:
    """(runs, page) with the page's offset counted from the start of its UTC day: the newer days' runs, counted by
    the sketch rows (exact sums) where they answer the list's filters, are skipped by a bound on ``started_at``
    instead of walked one index entry at a time (the middle page of 1M runs: 500,000 entries, 61 ms). Unchanged where
    the rows cannot count the filters (``evidence.counts_by``), or the order is not the list's own."""
    if tuple(runs.query.order_by) != ("-started_at", "-id"):
        return runs, page
    days = evidence.counts_by(runs, ("day",))
    if days is None:
        return runs, page
    newer = 0
    for (day,), n in sorted(days.items(), reverse=True):
        if newer + n > page.start:
            end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=timezone.utc)
            return runs.filter(started_at__lt=end), slice(page.start - newer, page.stop - newer)
        newer += n
    return runs, page


def _by_project(where) -> tuple[list | None, WhereNode]:
    """(the project ids a query's conditions allow, its other conditions): each ``project_id IN (...)`` or ``=``
    that the conditions AND narrows the ids; None where they name none (or not at their top level). A project the
    filters exclude is never walked: its runs would each be read and refused."""
    if where.negated or where.connector != AND:
        return None, where
    project = Run._meta.get_field("project")
    allowed, others = None, []
    for node in where.children:
        ids = _project_ids(node, project)
        if ids is None:  # another condition, or one on the project that is not a list of ids (a subquery)
            others.append(node)
        elif allowed is None:
            allowed = ids
        else:
            kept = set(ids)
            allowed = [pk for pk in allowed if pk in kept]
    return allowed, WhereNode(others, AND)


def _project_ids(node, project) -> list | None:
    if getattr(getattr(node, "lhs", None), "target", None) is not project:
        return None
    if node.lookup_name == "in" and isinstance(node.rhs, (list, tuple, set)):
        return list(node.rhs)
    if node.lookup_name == "exact" and isinstance(node.rhs, int):
        return [node.rhs]
    return None


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


class RunListPagination(RunPagination):
    """GET /api/v1/runs: :class:`RunPagination`'s pages of :class:`NewestRuns`, and ``after``: a run's id, from the
    ``next`` link, to continue right after that run. A page number alone is an offset (walked from the start of its
    UTC day, the newer days' runs counted by the sketch rows where they can), which shifts when runs arrive between
    two requests; ``after`` seeks to the run, so following ``next`` never repeats or skips a run. A run no longer in
    the list (deleted, or filtered out) leaves the page number to say where the page is."""

    after_query_param = "after"

    def paginate_queryset(self, queryset, request, view=None):
        raw = request.query_params.get(self.after_query_param)
        after = None
        if raw is not None:
            if not (raw.isascii() and raw.isdigit() and len(raw) < 19 and int(raw) >= 1):
                raise ValidationError({self.after_query_param: ["must be a run's id, as in a next link"]})
            after = queryset.filter(pk=int(raw)).values_list("started_at", "id").first()
        return super().paginate_queryset(NewestRuns(queryset, after), request, view)

    def get_next_link(self):
        link = super().get_next_link()
        if link is None or not self.page.object_list:  # (an empty page after a run: nothing follows)
            return None
        return replace_query_param(link, self.after_query_param, self.page.object_list[-1].pk)

    def get_previous_link(self):
        link = super().get_previous_link()
        return link and remove_query_param(link, self.after_query_param)

    def get_schema_operation_parameters(self, view):
        return [*super().get_schema_operation_parameters(view), {
            "name": self.after_query_param, "required": False, "in": "query",
            "description": "A run's id (from the next link): the page continues right after that run.",
            "schema": {"type": "integer", "minimum": 1, "maximum": 10**18 - 1}}]

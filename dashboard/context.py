"""What every dashboard page needs before its own queries: the filters, the resolved scope, and the template context
of the frame (`dashboard/base.html`: navigation, filter bar). Policy pages use it the same way:

    filters, scope, context = dashboard_context(request, page="overview")
    context["figure"] = figures.overview.heatmap(queries.overview_cells(scope))
"""
from collector.auth import visible_projects
from insights.vocabulary import COMPUTE_UNITS, SOURCES

from .filters import Filters
from .queries import device_options, min_runs, resolve_scope


def dashboard_context(request, page: str, extra_params: dict | None = None, query=None):
    """(filters, scope, context). `extra_params` are the page's own query parameters (e.g. metric), kept by the
    filter bar and by navigation links within the page; `query` replaces request.GET as the source of filters."""
    filters = Filters.from_query(request.GET if query is None else query)
    scope = resolve_scope(visible_projects(request), filters)
    devices, chips = device_options()
    context = {
        "page": page,
        "filters": scope.filters,
        "scope": scope,
        "query": scope.filters.query(),
        "extra_params": {k: v for k, v in (extra_params or {}).items() if v not in (None, "")},
        "devices": devices,
        "chips": chips,
        "compute_units_choices": COMPUTE_UNITS,
        "sources": SOURCES,
        "min_runs": min_runs(),
        "filter_errors": filters.errors,
    }
    return scope.filters, scope, context

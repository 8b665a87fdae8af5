"""What every dashboard page needs before its own queries: the filters, the resolved scope, and the template context
of the frame (`dashboard/base.html`: navigation, filter bar). Policy pages use it the same way:

    filters, scope, context = dashboard_context(request, page="overview")
    context["figure"] = figures.overview.heatmap(queries.overview_cells(scope))
"""
from collector.auth import visible_projects
from insights.vocabulary import COMPUTE_UNITS, SOURCES, SPECIALIZATION_STRATEGIES

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
        "specialization_strategies": SPECIALIZATION_STRATEGIES,
        "min_runs": min_runs(),
        "filter_errors": filters.errors,
        "filter_misses": filter_misses(filters, scope, devices, chips),
    }
    return scope.filters, scope, context


def filter_misses(filters, scope, devices, chips) -> list[str]:
    """The filters that name nothing there is (`model=nope`), each saying so, so a page with no runs does not blame
    an empty project."""
    misses = []
    if filters.project and scope.project is None:
        misses.append(f"project={filters.project}: no project of that name that you can read")
    elif scope.project is not None:
        models = sorted({mv.name for mv in scope.model_versions})
        if filters.model and filters.model not in models:
            misses.append(f"model={filters.model}: {scope.project.slug} has no model of that name"
                          + (f" (it has {', '.join(models)})" if models else ""))
        elif filters.version and scope.model_version is None:
            model = scope.filters.model
            versions = [mv.version for mv in scope.model_versions if mv.name == model]
            misses.append(f"version={filters.version}: {model} has no version of that name"
                          + (f" (it has {', '.join(versions)})" if versions else ""))
    if filters.device and filters.device not in {d.identifier for d in devices}:
        misses.append(f"device={filters.device}: no device of that identifier has uploaded runs")
    if filters.chip and filters.chip not in set(chips):
        misses.append(f"chip={filters.chip}: no device with that chip has uploaded runs")
    return misses

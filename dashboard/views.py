"""Dashboard pages: thin views that glue filters (dashboard.filters), queries (dashboard.queries), presenters and
figure builders (dashboard.figures). No statistics and no SQL here."""
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from . import presenters, queries
from .context import dashboard_context
from .evidence import predictions_per_session
from .figures import overview as overview_figures
from .figures.common import COMPUTE_UNITS, percent, to_html


def _choice(request, name, allowed, default):
    value = request.GET.get(name, default)
    return value if value in allowed else default


def _units(filters):
    return [u for u in COMPUTE_UNITS if not filters.compute_units or u in filters.compute_units]


@login_required
def overview(request):
    metric = _choice(request, "metric", dict(presenters.OVERVIEW_TABS), "warm")
    rows_param = _choice(request, "rows", ("device", "chip"), "")
    filters, scope, context = dashboard_context(request, "overview", {"metric": metric, "rows": rows_param})
    runs = scope.runs()
    by = rows_param or "device"
    stats = queries.device_unit_stats(runs, by=by)
    if not rows_param and queries.well_sampled_share(stats) < 0.5:
        # Too few runs per device to read anything: one row per chip instead (the page says so, one click back).
        by = "chip"
        stats = queries.device_unit_stats(runs, by="chip")
    figure = None
    if stats:
        units = _units(filters)
        rows, cells = presenters.overview_matrix(stats, metric, units)
        fig = overview_figures.heatmap(rows, units, cells, title=presenters.OVERVIEW_TITLES[metric],
                                       min_runs=context["min_runs"],
                                       kind="rate" if metric == "crash_rate" else "time")
        figure = to_html(fig, "overview-heatmap")
    max_rate = settings.PERFBOARD["MAX_FAILURE_RATE"]
    hotspots = presenters.failure_hotspots(stats, max_rate)
    for h in hotspots:
        narrow = {"device": h["identifier"]} if h["identifier"] else {"chip": h["chip"]}
        h["compare_query"] = filters.query(metric="crash_rate", **{"chip": "", "device": "", **narrow})
    context.update(
        metric=metric, figure=figure, hotspots=hotspots, rows_by=by, rows_auto=not rows_param,
        tabs=[(key, label, filters.query(metric=key, rows=rows_param)) for key, label in presenters.OVERVIEW_TABS],
        rows_queries={"device": filters.query(metric=metric, rows="device"),
                      "chip": filters.query(metric=metric, rows="chip")},
        total_runs=sum(s.runs for units in stats.values() for s in units.values()), row_count=len(stats),
        predictions_per_session=predictions_per_session(), max_failure_rate_pct=percent(max_rate),
    )
    return render(request, "dashboard/overview.html", context)


def _stub(request, page):
    filters, scope, context = dashboard_context(request, page)
    return render(request, "dashboard/stub.html", context)


@login_required
def compare(request):
    return _stub(request, "compare")


@login_required
def versions(request):
    return _stub(request, "versions")


@login_required
def fleet(request):
    return _stub(request, "fleet")


@login_required
def run_detail(request, run_id):
    return _stub(request, "run")

"""Dashboard pages: thin views that glue filters (dashboard.filters), queries (dashboard.queries), presenters and
figure builders (dashboard.figures). No statistics and no SQL here."""
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render

from collector.auth import visible_projects
from collector.sketches import shared_reads
from insights.vocabulary import METRICS
from perfboard.conf import perfboard_setting
from policy import queries as policy_queries
from policy.evidence import fallback_samples, policy_table
from policy.marks import policy_choices, predictions_per_session, runs_on_cpu

from . import presenters, queries
from .context import dashboard_context
from .figures import compare as compare_figures
from .figures import fleet as fleet_figures
from .figures import overview as overview_figures
from .figures import run as run_figures
from .figures import versions as versions_figures
from .figures.common import COMPUTE_UNITS, percent, to_html


# The policy judges a device with its chip's runs too, so the overview's marks read the runs as the policy page does:
# every device and unit of the scope (policy.views.policy).
POLICY_SKIP = ("device", "chip", "compute_units")


def _choice(request, name, allowed, default):
    value = request.GET.get(name, default)
    return value if value in allowed else default


def _metric(request, allowed, default):
    """The page's metric: a vocabulary key (insights.vocabulary.METRICS, as GET /api/v1/stats names it) or an older
    alias of one (queries.METRIC_ALIASES: ?metric=warm); anything else is the default."""
    name = request.GET.get("metric", default)
    name = queries.METRIC_ALIASES.get(name, name)
    return name if name in allowed else default


def _units(filters):
    return [u for u in COMPUTE_UNITS if not filters.compute_units or u in filters.compute_units]


@login_required
@shared_reads()  # the cells, the policy's marks and its fallback samples read one version's rows
def overview(request):
    metric = _metric(request, dict(presenters.OVERVIEW_TABS), "prediction")
    rows_param = _choice(request, "rows", ("device", "chip"), "")
    filters, scope, context = dashboard_context(request, "overview", {"metric": metric, "rows": rows_param})
    by = rows_param or "device"
    stats = queries.device_unit_stats(scope.runs(), by=by)
    if not rows_param and queries.well_sampled_share(stats) < 0.5:
        # Too few runs per device to read anything: one row per chip instead (the page says so, one click back).
        by = "chip"
        stats = queries.device_unit_stats(scope.runs(), by="chip")
    figure = None
    on_cpu = {}
    units = _units(filters)
    if stats:
        policy_runs = policy_queries.scope_runs(scope, skip=POLICY_SKIP)
        # Silent Neural Engine fallbacks (sketch rows, plan runs), read once for the marks and the policy's choices.
        samples = fallback_samples(policy_runs)
        on_cpu = runs_on_cpu(samples, by)
        choices = policy_choices(scope.model_version, policy_runs, by, units, samples=samples)
        rows, cells = presenters.overview_matrix(stats, metric, units, choices, on_cpu=on_cpu)
        fig = overview_figures.heatmap(rows, units, cells, title=presenters.OVERVIEW_TITLES[metric],
                                       min_runs=context["min_runs"],
                                       kind="rate" if metric == "crash_rate" else "time",
                                       max_failure_rate=perfboard_setting("MAX_FAILURE_RATE"))
        figure = to_html(fig, "overview-heatmap")
    max_rate = perfboard_setting("MAX_FAILURE_RATE")
    hotspots = presenters.failure_hotspots(stats, max_rate)
    for h in hotspots:
        narrow = {"device": h["identifier"]} if h["identifier"] else {"chip": h["chip"]}
        h["compare_query"] = filters.query(metric="crash_rate", **{"chip": "", "device": "", **narrow})
    labels = presenters.device_labels(stats) if on_cpu else {}
    on_cpu_rows = [{"label": labels[d], "units": sorted(on_cpu[d.pk if d.identifier else d.chip] & set(units))}
                   for d in stats if on_cpu.get(d.pk if d.identifier else d.chip, set()) & set(units)]
    context.update(
        metric=metric, figure=figure, hotspots=hotspots, rows_by=by, rows_auto=not rows_param, on_cpu_rows=on_cpu_rows,
        tabs=[(key, label, filters.query(metric=key, rows=rows_param)) for key, label in presenters.OVERVIEW_TABS],
        rows_queries={"device": filters.query(metric=metric, rows="device"),
                      "chip": filters.query(metric=metric, rows="chip")},
        total_runs=sum(s.runs for units in stats.values() for s in units.values()), row_count=len(stats),
        predictions_per_session=predictions_per_session(), max_failure_rate_pct=percent(max_rate),
    )
    return render(request, "dashboard/overview.html", context)


@login_required
def compare(request):
    metric = _metric(request, dict(presenters.COMPARE_METRICS), "prediction")
    filters, scope, context = dashboard_context(request, "compare", {"metric": request.GET.get("metric"),
                                                                     "rows": request.GET.get("rows")})
    # One box per chip and unit unless the filters already narrowed to a chip or device: 60 devices x 4 units
    # of boxes would not be readable.
    by = _choice(request, "rows", ("device", "chip"), "device" if filters.device or filters.chip else "chip")
    units = _units(filters)
    dist = queries.distribution_by_unit(scope.runs(), metric, by=by)
    timings = queries.unit_timings(scope.runs()) if dist else []
    figures = {}
    if dist:
        rows, boxes, rates = presenters.compare_inputs(dist, units)
        unit = METRICS[metric].unit
        value_label = unit if unit != "ms" else "ms (log scale)"
        figures["box"] = to_html(compare_figures.box_plot(
            rows, units, boxes, title=f"{METRICS[metric].label}: distribution over runs "
                                      f"(box: middle half, whiskers: 5th–95th percentile)",
            value_label=value_label, min_runs=context["min_runs"], log_y=unit == "ms"), "compare-box")
        figures["failures"] = to_html(compare_figures.failure_bars(
            rows, units, rates, title="Failure rate (crash, OOM, error, timeout) with 95% Wilson interval"),
            "compare-failures")
        stages, counts, first, warm, first_counts = presenters.timing_inputs(timings, units)
        figures["breakdown"] = to_html(compare_figures.breakdown_bars(
            units, stages, counts, title="Launch time by stage: decrypt, compile, load, first prediction"),
            "compare-breakdown")
        figures["first_vs_warm"] = to_html(compare_figures.first_vs_warm(
            units, first, warm, first_counts, title="First prediction vs warm prediction"), "compare-first-warm")
    context.update(
        metric=metric, rows_by=by, figures=figures,
        tabs=[(key, label, filters.query(metric=key, rows=by)) for key, label in presenters.COMPARE_METRICS],
        rows_queries={"device": filters.query(metric=metric, rows="device"),
                      "chip": filters.query(metric=metric, rows="chip")},
        total_runs=sum(s.runs for units_ in dist.values() for s in units_.values()),
    )
    return render(request, "dashboard/compare.html", context)


@login_required
def versions(request):
    metric = _metric(request, dict(presenters.COMPARE_METRICS), "prediction")
    filters, scope, context = dashboard_context(request, "versions", {"metric": request.GET.get("metric"),
                                                                      "rows": request.GET.get("rows"),
                                                                      "scale": request.GET.get("scale")})
    by = _choice(request, "rows", ("device", "chip"), "device" if filters.device or filters.chip else "chip")
    scale = _choice(request, "scale", ("relative", "ms"), "relative")
    units = _units(filters)
    by_version = queries.metric_by_version(scope, metric, by=by)
    figures = {}
    if by_version:
        m = METRICS[metric]
        value_label = m.unit
        panels, points = presenters.versions_inputs(by_version, units)
        figures["versions"] = to_html(versions_figures.across_versions(
            panels, units, [mv.version for mv in scope.versions], points,
            title=f"{m.label} by model version: "
                  + ("change of the median from the first version" if scale == "relative" else "median")
                  + f" and ~95% interval (hollow: fewer than {context['min_runs']} runs)",
            value_label=value_label, min_runs=context["min_runs"], relative=scale == "relative",
            min_span=perfboard_setting("MIN_EFFECT")),
            "versions-panels")
        by_day, starts = queries.metric_by_day(scope, metric)
        figures["time"] = to_html(versions_figures.over_time(
            units, presenters.time_series_inputs(by_day, units), starts,
            title=f"{m.label} per day, all selected devices together (dotted lines: first run of each version)",
            value_label=value_label), "versions-time")
    context.update(
        metric=metric, rows_by=by, figures=figures, scale=scale,
        tabs=[(key, label, filters.query(metric=key, rows=by, scale=scale))
              for key, label in presenters.COMPARE_METRICS],
        rows_queries={"device": filters.query(metric=metric, rows="device", scale=scale),
                      "chip": filters.query(metric=metric, rows="chip", scale=scale)},
        scale_queries={"relative": filters.query(metric=metric, rows=by, scale="relative"),
                       "ms": filters.query(metric=metric, rows=by, scale="ms")},
    )
    return render(request, "dashboard/versions.html", context)


@login_required
@shared_reads()  # the coverage counts and the policy table read the same rows
def fleet(request):
    filters, scope, context = dashboard_context(request, "fleet")
    units = _units(filters)
    # Counts, failures and recent uploads span every model of the project; the coverage matrix is per version.
    project_runs = scope.runs("project")
    counts = queries.fleet_counts(project_runs)
    figures = {}
    if counts["runs"]:
        totals, by_status, by_stage = presenters.failure_inputs(*queries.failures_by_unit(project_runs), units)
        figures["status"] = to_html(fleet_figures.failures_by_status(
            units, totals, by_status, title="Failure rate by status and compute unit (all models)"), "fleet-status")
        figures["stage"] = to_html(fleet_figures.failures_by_stage(
            units, by_stage, title="Failed runs by the stage that failed"), "fleet-stage")
    coverage_cells = queries.coverage(scope, "version")
    if coverage_cells:
        rows, os_majors, cov_units, cov_counts = presenters.coverage_inputs(coverage_cells, scope.model_version)
        figures["coverage"] = to_html(fleet_figures.coverage_matrix(
            rows, os_majors, cov_units, cov_counts, min_runs=context["min_runs"],
            title=f"Coverage of {scope.model_version}: runs per device, iOS major and compute units"),
            "fleet-coverage")
    under = sorted((c for c in coverage_cells if c.under_sampled), key=lambda c: (c.runs, c.chip_rank or 1e9))
    # First in "benchmark next": the runs that would change a policy answer (the policy page's last column).
    deciding = []
    if scope.model_version is not None:
        table = policy_table(scope.model_version, predictions_per_session(), devices="measured",
                             runs=scope.runs("version"))
        deciding = policy_queries.runs_that_would_change_answers(table)
    context.update(
        counts=counts, figures=figures, recent=queries.recent_runs(project_runs),
        failure_rate=percent(counts["failures"] / counts["runs"]) if counts["runs"] else None,
        coverage_total=len(coverage_cells), coverage_under=len(under), coverage_next=under[:15],
        deciding=deciding, policy_predictions=predictions_per_session(),
        coverage_api=f"/api/v1/coverage?{filters.query()}&under_sampled=true",
    )
    return render(request, "dashboard/fleet.html", context)


@login_required
def run_detail(request, run_id):
    run = queries.run_for(visible_projects(request), run_id)
    if run is None:
        raise Http404("No such run in your projects.")
    # The frame's filter bar and links keep the run's project, model and version.
    query = {"project": run.project.slug, "model": run.model_version.name, "version": run.model_version.version}
    filters, scope, context = dashboard_context(request, "run", query=query)
    by_device, top_ops, op_count = queries.compute_plan_summary(run) if run.has_compute_plan else ({}, [], 0)
    timings = {"decrypt": run.decrypt_ms, "compile": run.compile_ms, "load": run.load_ms,
               "first_prediction": run.first_prediction_ms}
    figures = {
        "warmup": to_html(run_figures.warmup_curve(run.first_prediction_ms, run.predictions_ms or [],
                                                   title="Warm-up: every prediction in call order"), "run-warmup"),
    }
    if any(v is not None for v in timings.values()):
        figures["timings"] = to_html(run_figures.launch_timings(timings, title="Launch timings"), "run-timings")
    if by_device:
        figures["plan"] = to_html(run_figures.plan_placement(by_device, title="Compute plan: where the ops run"),
                                  "run-plan")
    context.update(run=run, figures=figures, top_ops=top_ops, op_count=op_count, timings=timings,
                   same_cell_query=filters.query(device=run.device.identifier, compute_units=(run.compute_units,),
                                                 chip="", metric="prediction"))
    return render(request, "dashboard/run.html", context)

"""The policy pages: the compute-unit policy table with a device's break-even chart, and the cold-start page (time
to first result split by stage, variant A/B). Thin views: the frame's filters and scope (dashboard.context), the
policies of policy.evidence (the same as GET /api/v1/policy), policy.queries for the rest, and the figure builders
of policy.figures. The pages share the dashboard's frame (its base template, filters and nav).
"""
from functools import lru_cache
from urllib.parse import urlencode

import markdown
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.urls import reverse

from dashboard.context import dashboard_context
from dashboard.figures.common import percent, to_html
from insights.vocabulary import COMPUTE_UNITS, LOAD_KINDS
from perfboard.conf import policy_settings

from . import figures, queries
from .evidence import default_predictions_per_session, policy_table

MAX_PREDICTIONS_PER_SESSION = 10_000_000
DEVICE_SETS = {"measured": "devices with runs", "catalogue": "every catalogue device (as exported)"}


def _predictions_per_session(request, errors):
    raw = request.GET.get("predictions_per_session", "").strip()
    if not raw:
        return default_predictions_per_session()
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_PREDICTIONS_PER_SESSION:
        errors.append(f"predictions_per_session: {raw!r} is not a whole number from 1 to "
                      f"{MAX_PREDICTIONS_PER_SESSION:,}")
        return default_predictions_per_session()
    return value


def _choice(request, name, allowed, default, errors):
    value = request.GET.get(name, default)
    if value not in allowed:
        errors.append(f"{name}: {value!r} is not one of {', '.join(a or '(none)' for a in allowed)}")
        return default
    return value


def _tabs(filters, current):
    query = filters.query()
    return [(name, label, f"{reverse(name)}{'?' + query if query else ''}", name == current)
            for name, label in (("policy:policy", "Policy per device"), ("policy:coldstart", "Cold start"))]


@login_required
def policy(request):
    errors = []
    n = _predictions_per_session(request, errors)
    load_kind = _choice(request, "load_kind", ("", *LOAD_KINDS), "", errors)
    device_set = _choice(request, "devices", tuple(DEVICE_SETS), "measured", errors)
    params = {"predictions_per_session": n, "load_kind": load_kind, "devices": device_set}
    filters, scope, context = dashboard_context(request, "policy", params)
    conf = policy_settings()
    units = [u for u in COMPUTE_UNITS if not filters.compute_units or u in filters.compute_units]
    rows, selected, figure = [], None, None
    if scope.model_version is not None:
        runs = queries.scope_runs(scope, skip=("device", "chip", "compute_units"))
        table = policy_table(scope.model_version, n, load_kind or None, device_set, units, conf, runs=runs)
        if filters.chip:
            table = [entry for entry in table if entry.chip == filters.chip]
        rows = queries.policy_rows(table, units, conf)
        for row in rows:
            row["select_query"] = filters.query(device=row["identifier"], **params)
        # The break-even chart is for the device the user picks (the table's links, the select); else the first row.
        selected = next((e for e in table if e.identifier == filters.device), None) or (table[0] if table else None)
        if selected is not None:
            lines, crossings = queries.break_even_data(selected.policy)
            if lines:
                title = f"{selected.name}: expected session time per unit ({selected.policy.basis} evidence)"
                figure = to_html(figures.break_even(lines, crossings, n, title), "policy-break-even")
            context["crossings"] = crossings
    export_query = {"model": filters.model, "version": filters.version, "project": filters.project,
                    "predictions_per_session": n, **({"load_kind": load_kind} if load_kind else {})}
    context.update(
        rows=rows, units=units, selected=selected, figure=figure, predictions_per_session=n, load_kind=load_kind,
        load_kinds=LOAD_KINDS, device_set=device_set, device_sets=DEVICE_SETS, param_errors=errors,
        min_runs=conf.min_runs, max_failure_rate=percent(conf.max_failure_rate),
        default_units=conf.default_compute_units, final_fallback=conf.final_fallback,
        export_url=f"{reverse('policy-export')}?{urlencode(export_query)}",
        hidden_filters=list(filters.items()), tabs=_tabs(filters, "policy:policy"),
        select_filters=[(k, v) for k, v in [*filters.items(), *params.items()] if k != "device" and v != ""],
        confidence=f"{conf.confidence:.0%}",
    )
    return render(request, "policy/policy.html", context)


GUIDE = settings.BASE_DIR / "docs" / "compute-units.md"


@lru_cache(maxsize=4)
def _guide_html(path, mtime_ns) -> str:
    """docs/compute-units.md as HTML (Python-Markdown: tables, fenced code, heading ids); re-read when it changes.
    The file is the project's own (its raw <a id> anchors pass through), never user input."""
    text = path.read_text(encoding="utf-8")
    return markdown.markdown(text, extensions=["tables", "fenced_code", "toc", "sane_lists"], output_format="html")


@login_required
def guide(request):
    """The compute-unit guide (docs/compute-units.md), served as a page of the dashboard."""
    _, _, context = dashboard_context(request, "guide")
    context.update(guide=_guide_html(GUIDE, GUIDE.stat().st_mtime_ns), source="docs/compute-units.md")
    return render(request, "policy/guide.html", context)


@login_required
def cold_start(request):
    errors = []
    metric = _choice(request, "metric", tuple(queries.AB_METRICS), "time_to_first_result", errors)
    baseline_param = request.GET.get("baseline")
    params = {"metric": metric, "baseline": baseline_param}
    filters, scope, context = dashboard_context(request, "policy", params)
    stage_figure = variant_figure = None
    stages, ab = [], None
    if scope.model_version is not None:
        stages = queries.cold_start_rows(queries.scope_runs(scope))
        if stages:
            stage_figure = to_html(figures.cold_start(stages, "Median time to first result, by stage"),
                                   "coldstart-stages")
        baseline = None if baseline_param is None else ("" if baseline_param == "none" else baseline_param)
        ab = queries.variant_comparisons(queries.scope_runs(scope, skip=("variant",)), metric,
                                                baseline)
        if ab.rows:
            label = queries.AB_METRICS[metric][0]
            variant_figure = to_html(figures.variant_differences(ab.rows, label), "coldstart-variants")
    context.update(
        stages=stages, stage_figure=stage_figure, ab=ab, variant_figure=variant_figure, metric=metric,
        metric_label=queries.AB_METRICS[metric][0], param_errors=errors,
        metric_tabs=[(key, label, filters.query(metric=key, baseline=baseline_param))
                     for key, (label, _, _) in queries.AB_METRICS.items()],
        baseline_links=[(v or "(none)", filters.query(metric=metric, baseline=v or "none"))
                        for v in (ab.variants if ab else [])],
        tabs=_tabs(filters, "policy:coldstart"),
    )
    return render(request, "policy/coldstart.html", context)

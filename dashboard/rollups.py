"""Per-model-version rollups, so the dashboard's pages stay fast at millions of runs.

A page over one model version needs, per (device or chip) and compute unit, the runs, failures per status, and five
quantiles of seven per-run metrics; exact medians cannot be summed from partial aggregates, so they are computed
over all the version's runs in a few GROUP BY queries (`refresh`) and stored, with the Wilson intervals and the policy
mark, in `CellRollup` rows (a few hundred per version). A page view then reads those rows.

Freshness: `current(model_version)` compares the newest run id in the database (primary-key index: constant time)
with the one the rollup saw. If runs arrived since, and at least one belongs to this version (an index range scan
over the new ids only), the rollup is recomputed, unless it is younger than PERFBOARD["DASHBOARD_ROLLUP_MAX_AGE"]
seconds: then the page shows it with its time. With a Celery worker (CELERY_BROKER_URL) a stale rollup is recomputed
by a task (dashboard.refresh_rollup) while pages keep showing the previous one (if the broker cannot be reached, the
page says so and the rollup stays stale, to be queued again by the next view); without one (the embedded set-up)
the page view recomputes it. A missing rollup is always computed on the spot: at 1M runs that is 4 to 9 s per
version, so after a bulk load run `python manage.py refresh_dashboard_rollups`. Celery beat also recomputes every
stale rollup (dashboard.refresh_stale_rollups, every PERFBOARD["DASHBOARD_ROLLUP_REFRESH_SECONDS"]), so the first
viewer after an upload rarely waits or sees an old one.

Device and chip cells and unit timings are also kept per source (lab, field); pages narrowed by OS, variant, time
range or a single device (and, for the daily series, coverage and fleet counts, by source) query the runs instead
(see `applicable`).
"""
from datetime import timedelta

from django.db import transaction
from django.db.models import F, Max, Min, OuterRef, Q, Subquery
from django.utils import timezone

from collector.evidence import Timing, gather
from collector.models import Device, ModelVersion, Run
from insights.vocabulary import COMPUTE_UNITS, METRICS
from perfboard.conf import perfboard_setting
from policy.marks import policy_choices

from .models import CellRollup, RollupState
from .presenters import failure_interval
from .queries import (BAND_QUANTILES, BOX_QUANTILES, TIMING_METRICS, BoxStats, DeviceInfo, UnitStats, UnitTimings,
                      coverage_rows, failures_by_unit, median_band, timings_of)

ROLLUP_METRICS = tuple(METRICS)
# Bumped whenever what refresh() stores changes: rollups of another format are recomputed on first use.
FORMAT = 5  # 5: the policy marks are policy.marks.policy_choices (per configuration, as GET /api/v1/policy)
SOURCES = ("", "lab", "field")  # "": lab and field together


def max_age() -> float:
    return float(perfboard_setting("DASHBOARD_ROLLUP_MAX_AGE"))


def applicable(filters, by_source: bool = True) -> bool:
    """Whether a page with these filters can be answered from rollups: only project, model, version, chip, compute
    units and (where `by_source`: device and chip cells, unit timings) source may be set; these select rollup rows,
    the others would change the medians."""
    narrowing = ["device", "os_min", "os_max", "variant", "specialization_strategy", "since", "until",
                 "started_after", "started_before"] + (
        [] if by_source else ["source"])
    return not any(getattr(filters, name) not in (None, "", ()) for name in narrowing)


# --- computing ------------------------------------------------------------------------------------------------------

def cell_stats(e) -> dict:
    """The JSON stored per device/chip cell (an evidence row): failures per status, their Wilson interval,
    quantiles per metric."""
    interval = failure_interval(e.failure_count, e.runs)
    return {
        "failures": dict(e.failures), "failure_interval": [interval.low, interval.high],
        "metrics": {key: {"n": t.n, **t.quantiles} for key, t in e.metrics.items()},
    }


def refresh(model_version) -> RollupState:
    """Recompute the rollup of one model version (GROUP BY queries over its runs, each the evidence query of
    collector.evidence) and store it."""
    newest = Run.objects.aggregate(m=Max("id"))["m"] or 0
    runs = Run.objects.filter(model_version=model_version)
    coverage = coverage_rows(runs, ("device", "os_major", "compute_units"))
    chips = dict(Device.objects.filter(pk__in={r["device_id"] for r in coverage}).values_list("pk", "chip"))
    rows = []
    for source in SOURCES:
        rows += _cell_rows(model_version, runs.filter(source=source) if source else runs, source, chips)
    outcomes = failures_by_unit(runs)
    days = gather(runs, ("day", "compute_units"), ROLLUP_METRICS, BAND_QUANTILES)
    for row in rows:
        if row.level == "version" and not row.source:
            unit = row.compute_units
            row.stats["outcomes"] = [[o["status"], o["failure_stage"], o["n"]] for o in outcomes
                                     if o["compute_units"] == unit]
    for e in days:
        metrics = {key: {"n": t.n, **t.quantiles} for key, t in e.metrics.items()}
        rows.append(CellRollup(model_version=model_version, level="day", day=e.group[0],
                               compute_units=e.group[1], runs=sum(m["n"] for m in metrics.values()),
                               stats={"metrics": metrics}))
    for r in coverage:
        rows.append(CellRollup(model_version=model_version, level="coverage", device_id=r["device_id"],
                               chip=chips.get(r["device_id"], "") or "", os_major=r["os_major"],
                               compute_units=r["compute_units"], runs=r["n"], stats={"failures": r["failures"]}))
    total = sum(r.runs for r in rows if r.level == "version" and not r.source)
    with transaction.atomic():
        state, _ = RollupState.objects.select_for_update().get_or_create(
            model_version=model_version,
            defaults={"max_run_id": 0, "runs": 0, "computed_at": timezone.now(), "format": FORMAT})
        CellRollup.objects.filter(model_version=model_version).delete()
        CellRollup.objects.bulk_create(rows, batch_size=1000)
        state.max_run_id, state.runs, state.format = newest, total, FORMAT
        state.computed_at = timezone.now()
        state.save()
    return state


def stale_versions():
    """Model versions with runs whose rollup is missing, of an older format, or older than their newest run."""
    newest = Run.objects.filter(model_version=OuterRef("pk")).order_by("-id").values("id")[:1]
    return (ModelVersion.objects.annotate(newest_run=Subquery(newest)).filter(newest_run__isnull=False)
            .filter(Q(dashboard_rollup__isnull=True) | ~Q(dashboard_rollup__format=FORMAT)
                    | Q(dashboard_rollup__max_run_id__lt=F("newest_run")))
            .order_by("pk"))


def _cell_rows(model_version, runs, source, chips) -> list[CellRollup]:
    """Device, chip and whole-version cells of some runs (all of the version's, or one source's): the evidence
    query per device, chip and unit, and (all sources only) the units' first and last start. ``chips``: device pk
    -> chip."""
    by_device = gather(runs, ("device", "compute_units"), ROLLUP_METRICS, BOX_QUANTILES)
    by_chip = gather(runs, ("chip", "compute_units"), ROLLUP_METRICS, BOX_QUANTILES)
    by_unit = gather(runs, ("compute_units",), TIMING_METRICS)
    started = {} if source else {
        r["compute_units"]: [r["first"].isoformat(), r["last"].isoformat()]
        for r in runs.order_by().values("compute_units").annotate(first=Min("started_at"), last=Max("started_at"))}
    rows = []
    for level, data in (("device", by_device), ("chip", by_chip)):
        choices = policy_choices(model_version, runs, level)
        groups: dict = {}
        for e in data:
            groups.setdefault(e.group[0], []).append(e)
        for group_key, cells in groups.items():
            stats = {e.group[1]: cell_stats(e) for e in cells}
            best = choices[group_key].compute_units if group_key in choices else None
            for e in cells:
                unit = e.group[1]
                stats[unit]["recommended"] = unit == best
                rows.append(CellRollup(
                    model_version=model_version, level=level, source=source, compute_units=unit,
                    runs=e.runs, device_id=group_key if level == "device" else None,
                    chip=(chips.get(group_key, "") if level == "device" else group_key) or "",
                    stats=stats[unit]))
    for e in by_unit:
        unit = e.group[0]
        t = timings_of(unit, e)
        stats = {"stages": t.stages, "stage_runs": t.stage_runs, "first": t.first_prediction, "warm": t.warm,
                 "first_runs": t.first_runs, "warm_runs": t.warm_runs}
        if unit in started:
            stats["started"] = started[unit]
        rows.append(CellRollup(model_version=model_version, level="version", source=source,
                               compute_units=unit, runs=e.runs, stats=stats))
    return rows


def _refresh_stale(model_version, state, newest, broker_error="") -> RollupState:
    """A stale rollup that exists: with a Celery worker, recompute it in the background and serve it as it is
    meanwhile (once the task is queued, marking the newest run as seen, so other views do not queue the same work);
    in-process (no broker, the embedded set-up) recompute it now.

    When the task cannot be queued (the broker is down, or `broker_error` says an earlier version of this page view
    found it so), the rollup is served as it is with ``state.refresh_error`` set, and stays stale: the next page view
    or the beat task (refresh_stale_rollups) recomputes it."""
    from perfboard.celery import publish, runs_in_process

    if runs_in_process():
        return refresh(model_version)
    from .tasks import refresh_rollup

    sent = publish(refresh_rollup, args=[model_version.pk]) if not broker_error else None
    if not sent:
        state.refresh_error = broker_error or sent.error
        return state
    # Not lowering it: the task may already have recomputed the rollup with newer runs.
    RollupState.objects.filter(pk=state.pk, max_run_id__lt=newest).update(max_run_id=newest)
    return state


def current(model_version) -> RollupState:
    """The version's rollup state, recomputed first if it is missing or stale (see the module docstring)."""
    return current_many([model_version])[model_version.pk]


def current_many(model_versions) -> dict:
    """{version pk: RollupState} for several versions, each recomputed if missing or stale; two queries when all
    are fresh."""
    states = {s.pk: s for s in RollupState.objects.filter(model_version__in=[mv.pk for mv in model_versions])}
    newest = None
    broker_error = ""
    out = {}
    for mv in model_versions:
        state = states.get(mv.pk)
        if state is None or state.format != FORMAT:
            out[mv.pk] = refresh(mv)
            continue
        if newest is None:
            newest = Run.objects.aggregate(m=Max("id"))["m"] or 0
        if newest <= state.max_run_id or timezone.now() - state.computed_at < timedelta(seconds=max_age()):
            out[mv.pk] = state
        elif Run.objects.filter(id__gt=state.max_run_id, model_version=mv).exists():
            out[mv.pk] = _refresh_stale(mv, state, newest, broker_error)
            broker_error = getattr(out[mv.pk], "refresh_error", "")  # one wait on a broker that is down, not one each
        else:
            RollupState.objects.filter(pk=state.pk).update(max_run_id=newest)
            state.max_run_id = newest
            out[mv.pk] = state
    return out


# --- reading: the same shapes the live queries return ---------------------------------------------------------------

def _unit_stats(unit, runs, stats) -> UnitStats:
    metrics = {k: Timing(v["n"], {q: v[q] for q in v if q != "n"}) for k, v in stats["metrics"].items()}
    return UnitStats(unit, runs, dict(stats["failures"]), metrics, tuple(stats["failure_interval"]),
                     stats.get("recommended"))


def _cells(model_version, by, filters):
    """[(DeviceInfo of the row, CellRollup)] of one version, or of several when given a list."""
    versions = model_version if isinstance(model_version, (list, tuple)) else [model_version]
    cells = CellRollup.objects.filter(model_version__in=[mv.pk for mv in versions], level=by,
                                      source=filters.source or "")
    if filters.chip:
        cells = cells.filter(chip=filters.chip)
    if filters.compute_units:
        cells = cells.filter(compute_units__in=filters.compute_units)
    cells = list(cells)
    if by == "device":
        groups = {d.pk: DeviceInfo.of(d) for d in Device.objects.filter(pk__in={c.device_id for c in cells})}
        key = lambda c: groups[c.device_id]  # noqa: E731
    else:
        ranks = dict(Device.objects.filter(chip__in={c.chip for c in cells}).values_list("chip", "chip_rank"))
        infos = {chip: DeviceInfo(None, "", chip or "unknown chip", chip, ranks.get(chip), None)
                 for chip in {c.chip for c in cells}}
        key = lambda c: infos[c.chip]  # noqa: E731
    return [(key(c), c) for c in cells]


def device_unit_stats(model_version, filters, by="device"):
    """Like queries.device_unit_stats, from the rollup."""
    out: dict = {}
    for info, c in _cells(model_version, by, filters):
        out.setdefault(info, {})[c.compute_units] = _unit_stats(c.compute_units, c.runs, c.stats)
    return dict(sorted(out.items(), key=lambda kv: kv[0].order))


def distribution_by_unit(model_version, filters, metric_key, by="chip"):
    """Like queries.distribution_by_unit, from the rollup."""
    stats = device_unit_stats(model_version, filters, by)
    return {info: {unit: BoxStats.of(s, metric_key) for unit, s in units.items()} for info, units in stats.items()}


def unit_timings(model_version, filters) -> list[UnitTimings]:
    """Like queries.unit_timings over the whole version (so not for a chip filter: see the caller)."""
    rows = {c.compute_units: c for c in CellRollup.objects.filter(model_version=model_version, level="version",
                                                                   source=filters.source or "")}
    out = []
    for unit in COMPUTE_UNITS:
        c = rows.get(unit)
        if c is None or (filters.compute_units and unit not in filters.compute_units):
            continue
        st = c.stats
        out.append(UnitTimings(unit, c.runs, st["stages"], st["stage_runs"], st["first"], st["warm"],
                               st["first_runs"], st["warm_runs"]))
    return out


# --- what the pages call: the rollup when it applies, else the live query -------------------------------------------

def _ensure(scope, model_version):
    """`current(model_version)` once per page view (the scope remembers which versions it checked)."""
    _ensure_many(scope, [model_version])


def _ensure_many(scope, model_versions):
    checked = scope.__dict__.setdefault("_rollups_checked", {})
    missing = [mv for mv in model_versions if mv.pk not in checked]
    if missing:
        checked.update(current_many(missing))


def computed_at(scope):
    """When the oldest rollup this page view used was computed (None when it used none)."""
    states = list(scope.__dict__.get("_rollups_checked", {}).values())
    return min((s.computed_at for s in states), default=None)


def refresh_error(scope) -> str:
    """Why a stale rollup this page view used could not be queued for recomputation ("" when none was stale or all
    were queued): the page shows its older aggregates and says so."""
    states = scope.__dict__.get("_rollups_checked", {}).values()
    return next((s.refresh_error for s in states if getattr(s, "refresh_error", "")), "")


def overview_stats(scope, by="device"):
    from . import queries

    if scope.model_version is not None and applicable(scope.filters):
        _ensure(scope, scope.model_version)
        return device_unit_stats(scope.model_version, scope.filters, by)
    return queries.device_unit_stats(scope.runs(), by=by)


def compare_data(scope, metric_key, by="chip"):
    """(distribution per row and unit, unit timings)."""
    from . import queries

    if scope.model_version is not None and applicable(scope.filters):
        _ensure(scope, scope.model_version)
        dist = distribution_by_unit(scope.model_version, scope.filters, metric_key, by)
        if not dist:
            return dist, []
        timings = (unit_timings(scope.model_version, scope.filters) if not scope.filters.chip
                   else queries.unit_timings(scope.runs()))
        return dist, timings
    dist = queries.distribution_by_unit(scope.runs(), metric_key, by=by)
    return dist, (queries.unit_timings(scope.runs()) if dist else [])


def metric_by_version(scope, metric_key, by="chip"):
    """Like queries.metric_by_version, from each version's rollup when the filters allow."""
    from . import queries

    if not scope.versions or not applicable(scope.filters):
        return queries.metric_by_version(scope, metric_key, by=by)
    out: dict = {}
    _ensure_many(scope, scope.versions)
    version_of = {mv.pk: mv.version for mv in scope.versions}
    for info, c in _cells(scope.versions, by, scope.filters):
        m = c.stats["metrics"][metric_key]
        if m["n"]:
            out.setdefault(info, {}).setdefault(c.compute_units, {})[version_of[c.model_version_id]] = \
                median_band(m["median"], m["q1"], m["q3"], m["n"])
    return dict(sorted(out.items(), key=lambda kv: kv[0].order))


def coverage(scope, span="version"):
    """Coverage cells (queries.coverage) of the selected version, of all versions of the model (span "model") or of
    the project ("project"), from the versions' rollups when the filters allow (counts add up across versions)."""
    from . import queries

    if span == "version":
        versions = [scope.model_version] if scope.model_version else []
    elif span == "model":
        versions = scope.versions
    else:
        versions = scope.model_versions
    if not versions:
        return []
    if not applicable(scope.filters, by_source=False):
        return queries.coverage(scope, span)
    _ensure_many(scope, versions)
    units, chip = scope.filters.compute_units, scope.filters.chip
    cells = CellRollup.objects.filter(model_version__in=[mv.pk for mv in versions], level="coverage")
    if chip:
        cells = cells.filter(chip=chip)
    if units:
        cells = cells.filter(compute_units__in=units)
    rows = [{"model_version_id": c.model_version_id, "device_id": c.device_id, "os_major": c.os_major,
             "compute_units": c.compute_units, "n": c.runs, "failures": c.stats.get("failures", 0)}
            for c in cells.only("model_version_id", "device_id", "os_major", "compute_units", "runs", "stats")]
    return queries.coverage(scope, span, rows=rows)


def metric_by_day(scope, metric_key):
    """({(unit, version): {date: MedianBand}}, {version: first start}) from the versions' day rollups, or None when
    the filters need the runs themselves. Days are per version: medians of two versions live on the same day are
    not merged (they cannot be), each version is its own segment."""
    from datetime import datetime

    from . import queries

    if not scope.versions or not applicable(scope.filters, by_source=False) or scope.filters.chip:
        return None
    _ensure_many(scope, scope.versions)
    version_of = {mv.pk: mv.version for mv in scope.versions}
    cells = CellRollup.objects.filter(model_version__in=list(version_of), level__in=("day", "version"), source="")
    if scope.filters.compute_units:
        cells = cells.filter(compute_units__in=scope.filters.compute_units)
    series, starts = {}, {}
    for c in cells:
        version = version_of[c.model_version_id]
        if c.level == "version":
            first = datetime.fromisoformat(c.stats["started"][0])
            starts[version] = min(starts.get(version, first), first)
            continue
        m = c.stats["metrics"][metric_key]
        if m["n"]:
            series.setdefault((c.compute_units, version), {})[c.day] = median_band(
                m["median"], m["q1"], m["q3"], m["n"])
    return series, starts


def fleet_data(scope):
    """(counts like queries.fleet_counts, outcome rows like queries.failures_by_unit) over every version of the
    project, from their rollups; None when the filters need the runs themselves."""
    from datetime import datetime

    if scope.project is None or not applicable(scope.filters, by_source=False) or scope.filters.chip:
        return None
    versions = list(scope.model_versions)
    if not versions:
        return None
    _ensure_many(scope, versions)
    cells = CellRollup.objects.filter(model_version__in=[mv.pk for mv in versions], level="version", source="")
    devices = CellRollup.objects.filter(model_version__in=[mv.pk for mv in versions], level="coverage")
    if scope.filters.compute_units:
        cells = cells.filter(compute_units__in=scope.filters.compute_units)
        devices = devices.filter(compute_units__in=scope.filters.compute_units)
    cells = list(cells)
    merged: dict = {}
    for c in cells:
        for status, stage, n in c.stats["outcomes"]:
            merged[(c.compute_units, status, stage)] = merged.get((c.compute_units, status, stage), 0) + n
    outcomes = [{"compute_units": u, "status": status, "failure_stage": stage, "n": n}
                for (u, status, stage), n in merged.items()]
    starts = [datetime.fromisoformat(t) for c in cells for t in c.stats["started"]]
    counts = {"runs": sum(c.runs for c in cells),
              "devices": devices.values("device_id").distinct().count(),
              "versions": len({c.model_version_id for c in cells}),
              "failures": sum(o["n"] for o in outcomes if o["status"] != "ok"),
              "first": min(starts, default=None), "last": max(starts, default=None)}
    return counts, outcomes

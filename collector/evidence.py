"""The one evidence query: per group of runs, how many ran, how many failed (per status), and the quantiles of the
vocabulary's metrics over the runs that may give them.

Every number Perfboard shows about a group of runs comes from :func:`gather`: the compute-unit policy
(``policy.evidence``), the dashboard's pages (``dashboard.queries``), coverage and ``GET /api/v1/stats``. So a page,
the stats API and the policy cannot disagree about the same runs.

The rule, from ``insights.vocabulary.Metric``: ``runs`` and ``failures`` count every run of the group (every status,
every load kind); a metric's count and quantiles come only from the runs in :func:`timed_runs` of it: successful runs
(``successful_only``) that have the value, and for a load metric only runs of its load kind. A failed run's timings
are those of a session that did not happen: they never enter a quantile.

Two ways to the same answer. When every filter and grouping is a key of the sketch rows (model version, device or
chip, compute units, optimization hints, load kind, OS, source, variant, time bounds:
``collector.sketches.sketch_filter``), the rows' exact counts are summed and their KLL sketches merged: no run is
read but the few not yet added to their rows (``collector.models.PendingRun``, with a task broker) and those of a
day a time bound cuts (the rows hold whole UTC days), and the answer is as fresh as the last upload. Quantiles are
then exact while a group holds at most about 200 values and otherwise within ``collector.sketches.RANK_ERROR``
(1.33%) in rank.
Anything else (a status filter, grouping by status or failure stage, a metric of an unsketched column) is one GROUP
BY query over the runs (:func:`gather_from_runs`); its quantiles are ``collector.aggregates.Percentile``
(PostgreSQL's ``percentile_cont``, the same interpolation registered on SQLite).
"""
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from django.core.exceptions import EmptyResultSet
from django.db.models import Count, F, FloatField, Q, Value
from django.db.models.functions import Coalesce, TruncDate
from django.db.models.sql.where import AND, WhereNode

from insights.vocabulary import FAILURE_STATUSES, METRICS, OK, Metric
from insights.weighted import Weighted

from . import sketches
from .aggregates import Percentile

# What runs can be grouped by: the name callers use -> the Run column (or annotation) it groups.
GROUPS = {
    "device": "device_id",
    "chip": "device__chip",
    "compute_units": "compute_units",
    # The optimization hints: with compute_units, a run's configuration (never pooled when grouped by them).
    "specialization_strategy": "specialization_strategy",
    "reshape_frequency": "reshape_frequency",
    "version": "model_version_id",
    "os_major": "os_major",
    "variant": "variant",
    "source": "source",
    "load_kind": "load_kind",
    "status": "status",
    "failure_stage": "failure_stage",
    "day": "day",  # the UTC date of started_at
}

MEDIAN = {"median": 0.5}


def or_zero(column):
    """A nullable run column, 0 where NULL (a launch stage a run did not report)."""
    return Coalesce(F(column), Value(0.0), output_field=FloatField())


# A metric's column that no run column holds: the same value as collector.sketches.DERIVED, in SQL.
DERIVED = {"launch_ms": or_zero("decrypt_ms") + or_zero("compile_ms") + or_zero("load_ms") + F("first_prediction_ms"),
           "ready_ms": or_zero("decrypt_ms") + or_zero("compile_ms") + F("load_ms")}


def _with_derived(runs, metrics):
    """``runs`` annotated with the derived columns some of ``metrics`` read."""
    derived = {m.column: DERIVED[m.column] for m in metrics if m.column in DERIVED}
    return runs.annotate(**derived) if derived else runs


@dataclass(frozen=True)
class Timing:
    """One metric of one group: the timed runs (``n``) and the requested quantiles (None without values)."""

    n: int
    quantiles: Mapping[str, float | None]

    @property
    def median(self) -> float | None:
        return self.quantiles.get("median")

    def __getitem__(self, name: str) -> float | None:
        return self.quantiles[name]


class Outcomes:
    """Failure count and rate of a group with ``runs`` and ``failures`` ({failed status: count})."""

    @property
    def failure_count(self) -> int:
        return sum(self.failures.values())

    @property
    def failure_rate(self) -> float | None:
        return self.failure_count / self.runs if self.runs else None


@dataclass(frozen=True)
class Evidence(Outcomes):
    """What the runs of one group showed. ``group`` holds the grouped values in the order of ``by``."""

    group: tuple
    runs: int
    failures: Mapping[str, int]  # failed status -> count (statuses with failures only)
    metrics: Mapping[str, Timing]  # metric key -> Timing

    def median(self, key: str) -> float | None:
        timing = self.metrics.get(key)
        return timing.median if timing else None

    def timed(self, key: str) -> int:
        timing = self.metrics.get(key)
        return timing.n if timing else 0


def metric(key_or_metric) -> Metric:
    """A vocabulary metric by key, or a Metric given as is (e.g. a launch stage restricted to one load kind)."""
    return METRICS[key_or_metric] if isinstance(key_or_metric, str) else key_or_metric


def timed_runs(key_or_metric) -> Q:
    """The runs whose value of the metric may enter its quantiles: those with a value, successful ones only
    (``successful_only``), and for a load metric those of its load kind."""
    m = metric(key_or_metric)
    q = Q(**{f"{m.column}__isnull": False})
    if m.successful_only:
        q &= Q(status=OK)
    if m.load_kind:
        q &= Q(load_kind=m.load_kind)
    return q


def gather(runs, by: Sequence[str], metrics: Iterable = (),
           quantiles: Mapping[str, float] = MEDIAN) -> list[Evidence]:
    """Per group of ``runs`` (a Run queryset with its scope and filters applied) by the ``GROUPS`` named in ``by``:
    runs, failures per status, and for each metric (a vocabulary key, or a ``Metric``) the timed runs and the
    ``quantiles`` ({name: p}) over :func:`timed_runs`. One query, on the sketch rows when they can answer
    (:func:`gather_from_sketches`), else on the runs; groups in no particular order."""
    return gather_each(runs, [by], metrics, quantiles)[0]


def gather_each(runs, bys: Sequence[Sequence[str]], metrics: Iterable = (),
                quantiles: Mapping[str, float] = MEDIAN) -> list[list[Evidence]]:
    """:func:`gather` for each grouping in ``bys`` of the same runs: the sketch rows read once for all of them when
    they answer, else one query on the runs per grouping."""
    bys = [tuple(by) for by in bys]
    unknown = [b for by in bys for b in by if b not in GROUPS]
    if unknown or not all(bys):
        raise ValueError(f"cannot group runs by {', '.join(unknown) or 'nothing'}; use {', '.join(GROUPS)}")
    metrics = [metric(m) for m in metrics]
    if all(b in sketches.GROUPS for by in bys for b in by) and all(_sketched(m) for m in metrics):
        q = sketches.sketch_filter(runs)
        if q is not None:
            return gather_from_sketches(runs, q, bys, metrics, quantiles)
    return [gather_from_runs(runs, by, metrics, quantiles) for by in bys]


def _sketched(m: Metric) -> bool:
    return m.successful_only and m.column in sketches.COLUMNS


def gather_from_sketches(runs, q, bys: Sequence[Sequence[str]], metrics: Iterable = (),
                         quantiles: Mapping[str, float] = MEDIAN) -> list[list[Evidence]]:
    """:func:`gather_each` over the sketch rows matching ``q`` (``runs``' filter on them:
    ``sketches.sketch_filter``) and ``runs``' pending ones: counts summed, each metric's sketches merged (a load
    metric's over rows of its load kind only)."""
    metrics = [metric(m) for m in metrics]
    quantiles = dict(quantiles)
    wanted = {(m.column, m.load_kind) for m in metrics}
    groupings = [[sketches.GROUPS[b] for b in by] for by in bys]
    return [[_evidence(group, runs, failures, merged, metrics, quantiles) for group, runs, failures, merged in rows]
            for rows in sketches.merged_by(runs, q, groupings, wanted)]


def _evidence(group, runs, failures, merged, metrics, quantiles) -> Evidence:
    timings = {}
    for m in metrics:
        sketch = merged.get((m.column, m.load_kind))
        n = sketch.n if sketch is not None else 0
        timings[m.key] = Timing(n, sketches.Quantiles(sketch, quantiles) if n else dict.fromkeys(quantiles))
    return Evidence(group=tuple(group), runs=runs,
                    failures={s: failures[s] for s in FAILURE_STATUSES if failures.get(s)}, metrics=timings)


def gather_from_runs(runs, by: Sequence[str], metrics: Iterable = (),
                     quantiles: Mapping[str, float] = MEDIAN) -> list[Evidence]:
    """:func:`gather` by one GROUP BY over the runs themselves."""
    by = tuple(by)
    metrics = [metric(m) for m in metrics]
    quantiles = dict(quantiles)
    if "day" in by:
        runs = runs.annotate(day=TruncDate("started_at"))
    runs = _with_derived(runs, metrics)
    ann = {"ev_runs": Count("id")}
    ann.update({f"ev_fail_{s}": Count("id", filter=Q(status=s)) for s in FAILURE_STATUSES})
    for i, m in enumerate(metrics):
        timed = timed_runs(m)
        ann[f"ev_{i}_n"] = Count("id", filter=timed)
        for j, p in enumerate(quantiles.values()):
            ann[f"ev_{i}_q{j}"] = Percentile(m.column, p, filter=timed)
    columns = [GROUPS[b] for b in by]
    out = []
    for row in runs.order_by().values(*columns).annotate(**ann):
        out.append(Evidence(
            group=tuple(row[c] for c in columns),
            runs=row["ev_runs"],
            failures={s: row[f"ev_fail_{s}"] for s in FAILURE_STATUSES if row[f"ev_fail_{s}"]},
            metrics={m.key: Timing(row[f"ev_{i}_n"], {name: _float(row[f"ev_{i}_q{j}"])
                                                      for j, name in enumerate(quantiles)})
                     for i, m in enumerate(metrics)},
        ))
    return out


def failures_by_stage(runs, by: Sequence[str]) -> dict[tuple, dict[str, int]]:
    """Per group of ``runs`` by the ``GROUPS`` named in ``by``: its failed runs per stage they failed in
    (``insights.vocabulary.STAGES``, ``sketches.NO_STAGE`` where a run named none); groups without failures left out.
    From the sketch rows when they answer, as :func:`gather` does, else one GROUP BY over the failed runs."""
    by = tuple(by)
    if all(b in sketches.GROUPS for b in by):
        q = sketches.sketch_filter(runs)
        if q is not None:
            return sketches.merged_stages(runs, q, [sketches.GROUPS[b] for b in by])
    columns = [GROUPS[b] for b in by]
    if "day" in by:
        runs = runs.annotate(day=TruncDate("started_at"))
    out: dict[tuple, dict[str, int]] = {}
    for row in runs.exclude(status=OK).order_by().values(*columns, "failure_stage").annotate(n=Count("*")):
        stages = out.setdefault(tuple(row[c] for c in columns), {})
        stage = sketches.stage_of(row["failure_stage"])
        stages[stage] = stages.get(stage, 0) + row["n"]
    return out


def count(runs) -> int:
    """How many runs a Run queryset holds, exactly: :func:`counts_by` summed where the sketch rows count its
    filters, else ``COUNT(*)``. A paginated list of a project's runs counted them all on every page (at 1M runs,
    field runs of one unit: 509 ms, every heap page of the project's runs; successful runs: 407 ms)."""
    counts = counts_by(runs, ("version",))
    return runs.count() if counts is None else sum(counts.values())


def counts_by(runs, by: Sequence[str]) -> dict[tuple, int] | None:
    """Per group of a Run queryset by the ``GROUPS`` named in ``by``, how many runs it holds, exactly, from the
    sketch rows (pending runs counted from the runs); None where the rows cannot count its filters or groups. A
    filter to one status is counted too: a row counts its failed runs per status, and the rest succeeded."""
    if not all(b in sketches.GROUPS for b in by):
        return None
    runs, status = _status_apart(runs)
    q = sketches.sketch_filter(runs)
    if q is None:
        return None
    try:
        groups = gather_from_sketches(runs, q, [tuple(by)])[0]
    except EmptyResultSet:  # a filter no row can match (an empty list of values): the ORM's count says 0 unasked
        return {}
    if status is None:
        return {e.group: e.runs for e in groups}
    if status == OK:
        return {e.group: e.runs - e.failure_count for e in groups}
    return {e.group: e.failures.get(status, 0) for e in groups}


def _status_apart(runs) -> tuple:
    """(``runs`` without its condition on the status, the status it asks), where its conditions are ANDed and one
    of them asks one status; else (``runs``, None)."""
    where = runs.query.where
    if where.negated or where.connector != AND:
        return runs, None
    column = runs.model._meta.get_field("status")
    asked = [node for node in where.children if getattr(getattr(node, "lhs", None), "target", None) is column]
    if len(asked) != 1 or asked[0].lookup_name != "exact" or not isinstance(asked[0].rhs, str):
        return runs, None
    apart = runs.all()
    apart.query.where = WhereNode([node for node in where.children if node is not asked[0]], AND)
    return apart, asked[0].rhs


def gather_values(runs, by: Sequence[str], key_or_metric) -> dict[tuple, Weighted]:
    """Per group of ``runs`` by the ``GROUPS`` named in ``by``, the metric's values over :func:`timed_runs` in
    order, as a weighted sample (``insights.weighted``), for a test that needs samples (a rank test) rather than
    quantiles. From the sketch rows when they answer, as :func:`gather` does: while a group's merged sketch holds
    every value, those values; beyond (about 200 values), the sketch's items standing for as many values as the
    group has, each within ``sketches.RANK_ERROR`` of its rank (``sketches.values``). Otherwise the runs' own
    values (one query), each once."""
    by = tuple(by)
    m = metric(key_or_metric)
    if all(b in sketches.GROUPS for b in by) and _sketched(m):
        q = sketches.sketch_filter(runs)
        if q is not None:
            return {tuple(group): sketches.values(sketches.resolved(merged[(m.column, m.load_kind)]))
                    for group, _, _, merged in sketches.merged(runs, q, [sketches.GROUPS[b] for b in by],
                                                               {(m.column, m.load_kind)})
                    if (m.column, m.load_kind) in merged}
    columns = [GROUPS[b] for b in by]
    if "day" in by:
        runs = runs.annotate(day=TruncDate("started_at"))
    runs = _with_derived(runs, [m])
    values: dict[tuple, list] = {}
    for *group, value in runs.filter(timed_runs(m)).order_by().values_list(*columns, m.column).iterator(5000):
        values.setdefault(tuple(group), []).append(value)
    return {group: Weighted.of(np.sort(np.asarray(v, dtype=float))) for group, v in values.items()}


def gather_by(runs, by: Sequence[str], metrics: Iterable = (),
              quantiles: Mapping[str, float] = MEDIAN) -> dict[tuple, Evidence]:
    """:func:`gather` keyed by each group's values."""
    return {e.group: e for e in gather(runs, by, metrics, quantiles)}


def _float(value):
    return None if value is None else float(value)

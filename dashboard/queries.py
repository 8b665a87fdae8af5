"""What the dashboard pages ask the database. Views call these; figure builders receive their plain results.

Every page aggregates in the database over the per-run summary columns (`prediction_median_ms`, `load_ms`, ...)
with GROUP BY and percentiles (`collector.aggregates`); no function here loads all runs into Python, and each
issues a fixed number of queries whatever the number of runs.
"""
import re
from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import Count, F, Q

from collector.models import Device, ModelVersion, Project, Run

from collector.aggregates import Median, Percentile
from .filters import Filters


def version_key(version: str):
    """Sorts "3.10.0" after "3.9.1"; non-numeric parts sort as text after numbers."""
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"[.\-+]", version))


def min_runs() -> int:
    return settings.PERFBOARD["MIN_RUNS"]


@dataclass
class Scope:
    """The project and model version a page shows, resolved from the filters against what the user may see.

    `filters` is the request's filters with project, model and version filled in with the defaults used (the
    first visible project, its first model by name, that model's highest version), so links keep the scope.
    """

    filters: Filters
    projects: list = field(default_factory=list)
    project: Project | None = None
    model_versions: list = field(default_factory=list)  # all of the project's, by name then version
    model_version: ModelVersion | None = None

    @property
    def models(self) -> list[str]:
        return sorted({mv.name for mv in self.model_versions})

    @property
    def versions(self) -> list[ModelVersion]:
        """The versions of the selected model, oldest first."""
        return [mv for mv in self.model_versions if self.model_version and mv.name == self.model_version.name]

    def runs(self, span: str = "version"):
        """The runs this page shows, narrowed by every filter.

        span: "version" (the selected model version), "model" (all versions of the selected model) or "project".
        """
        if self.project is None:
            return Run.objects.none()
        runs = Run.objects.filter(project=self.project)
        if span == "version":
            if self.model_version is None:
                return Run.objects.none()
            runs = runs.filter(model_version=self.model_version)
        elif span == "model":
            if self.model_version is None:
                return Run.objects.none()
            runs = runs.filter(model_version__in=[mv.pk for mv in self.versions])
        return self.filters.apply(runs, skip=("project", "model", "version"))


def resolve_scope(visible, filters: Filters) -> Scope:
    """Resolve project, model and version (two small queries: projects, then the project's model versions).

    `visible` is the queryset of projects the user may read (`collector.auth.visible_projects`). A project slug the
    user may not read is treated like an unknown one: the page shows nothing of it.
    """
    projects = list(visible.order_by("slug"))
    scope = Scope(filters=filters, projects=projects)
    if filters.project:
        scope.project = next((p for p in projects if p.slug == filters.project), None)
        if scope.project is None:
            return scope
    elif projects:
        scope.project = projects[0]
    if scope.project is None:
        return scope
    scope.model_versions = sorted(ModelVersion.objects.filter(project=scope.project),
                                  key=lambda mv: (mv.name, version_key(mv.version)))
    model = filters.model or (scope.models[0] if scope.model_versions else "")
    of_model = [mv for mv in scope.model_versions if mv.name == model]
    if filters.version:
        scope.model_version = next((mv for mv in of_model if mv.version == filters.version), None)
    elif of_model:
        scope.model_version = of_model[-1]
    scope.filters = filters.replace(project=scope.project.slug, model=model,
                                    version=scope.model_version.version if scope.model_version else filters.version)
    return scope


def device_options():
    """All devices of the catalogue (and unknown ones seen), oldest chip first: the device and chip filters."""
    devices = list(Device.objects.order_by("chip_rank", "name", "identifier"))
    chips = list(dict.fromkeys(d.chip for d in devices if d.chip))
    return devices, chips


def failure_q():
    return ~Q(status="ok")


def count_failures():
    return Count("id", filter=failure_q())


# --- Coverage (fleet page and GET /api/v1/coverage) -------------------------------------------------------------

@dataclass(frozen=True)
class CoverageCell:
    model: str
    version: str
    device: str  # hardware identifier
    device_name: str
    chip: str
    chip_rank: float | None
    os_major: int
    compute_units: str
    runs: int
    failures: int
    min_runs: int

    @property
    def under_sampled(self) -> bool:
        return self.runs < self.min_runs

    @property
    def needed(self) -> int:
        return max(self.min_runs - self.runs, 0)

    def to_dict(self) -> dict:
        return {"model": self.model, "version": self.version, "device": self.device,
                "device_name": self.device_name, "chip": self.chip, "os_major": self.os_major,
                "compute_units": self.compute_units, "runs": self.runs, "failures": self.failures,
                "under_sampled": self.under_sampled, "runs_needed": self.needed}


def coverage(scope: Scope, span: str = "model", units=None, rows=None) -> list[CoverageCell]:
    """Runs per (model version, device, OS major, compute units), including the cells nobody has run yet.

    The grid is every model version in the span x every device and OS major seen in those runs x every compute
    unit (or the filtered ones), so an empty cell means "benchmark this next". One GROUP BY query and one for the
    devices. Sorted by model, version, chip generation, device, OS, unit.
    """
    from collector.models import COMPUTE_UNITS

    if rows is None:  # else precomputed rows of the same shape (dashboard.rollups)
        rows = list(scope.runs(span).values("model_version_id", "device_id", "os_major", "compute_units")
                    .annotate(n=Count("id"), failures=count_failures()).order_by())
    if not rows:
        return []
    versions = {mv.pk: mv for mv in scope.model_versions}
    devices = {d.pk: d for d in Device.objects.filter(pk__in={r["device_id"] for r in rows})}
    counts = {(r["model_version_id"], r["device_id"], r["os_major"], r["compute_units"]): (r["n"], r["failures"])
              for r in rows}
    units = [u for u in COMPUTE_UNITS if u in (units or scope.filters.compute_units or COMPUTE_UNITS)]
    version_ids = sorted({r["model_version_id"] for r in rows},
                         key=lambda pk: (versions[pk].name, version_key(versions[pk].version)))
    device_ids = sorted(devices, key=lambda pk: (devices[pk].chip_rank or 1e9, devices[pk].name,
                                                 devices[pk].identifier))
    os_majors = sorted({r["os_major"] for r in rows})
    need = min_runs()
    cells = []
    for v in version_ids:
        mv = versions[v]
        for d in device_ids:
            device = devices[d]
            for os_major in os_majors:
                for unit in units:
                    n, failures = counts.get((v, d, os_major, unit), (0, 0))
                    cells.append(CoverageCell(mv.name, mv.version, device.identifier, device.display_name,
                                              device.chip, device.chip_rank, os_major, unit, n, failures, need))
    return cells


# --- Overview: device x compute-unit matrices ---------------------------------------------------------------------

@dataclass(frozen=True)
class Metric:
    """A per-run summary column, optionally restricted to some runs (e.g. cold loads)."""

    key: str
    label: str
    column: str
    only: dict = field(default_factory=dict)

    def q(self):
        return Q(**self.only) if self.only else Q()


# The timing metrics every page can show, in the user's words. Medians are over runs of each run's own value
# (for warm predictions: the median of each run's warm predictions).
METRICS = {
    m.key: m for m in [
        Metric("warm", "Warm prediction", "prediction_median_ms"),
        Metric("load_cold", "Cold load (first after install/OS update)", "load_ms", {"load_kind": "cold"}),
        Metric("load_cached", "Cached load", "load_ms", {"load_kind": "cached"}),
        Metric("load_in_memory", "In-memory load (decrypted, never on disk)", "load_ms", {"load_kind": "in_memory"}),
        Metric("first_prediction", "First prediction", "first_prediction_ms"),
        Metric("warm_p90", "Warm prediction p90 (per run)", "prediction_p90_ms"),
        Metric("peak_memory", "Peak memory (MB)", "peak_memory_mb"),
    ]
}
FAILURE_STATUSES = ("crash", "oom", "error", "timeout")


@dataclass(frozen=True)
class DeviceInfo:
    pk: int
    identifier: str
    name: str
    chip: str
    chip_rank: float | None
    ram_gb: int | None

    @classmethod
    def of(cls, device: Device) -> "DeviceInfo":
        return cls(device.pk, device.identifier, device.display_name, device.chip, device.chip_rank, device.ram_gb)

    @property
    def order(self):
        return (self.chip_rank if self.chip_rank is not None else 1e9, self.name, self.identifier)


@dataclass(frozen=True)
class UnitStats:
    """What the runs of one compute unit on one device (or group) showed."""

    compute_units: str
    runs: int
    failures: dict  # status -> count, failed statuses only
    medians: dict  # metric key -> median (None without values)
    counts: dict  # metric key -> runs with a value
    failure_interval: tuple | None = None  # (low, high), when precomputed (dashboard.rollups)
    recommended: bool | None = None  # the policy mark, when precomputed

    @property
    def failure_count(self) -> int:
        return sum(self.failures.values())

    @property
    def failure_rate(self) -> float | None:
        return self.failure_count / self.runs if self.runs else None


def _unit_stats_annotations(metric_keys):
    ann = {"runs": Count("id")}
    for status in FAILURE_STATUSES:
        ann[f"fail_{status}"] = Count("id", filter=Q(status=status))
    for key in metric_keys:
        m = METRICS[key]
        ann[f"median_{key}"] = Median(m.column, filter=m.q())
        ann[f"count_{key}"] = Count(m.column, filter=m.q())
    return ann


def _unit_stats(row, metric_keys) -> UnitStats:
    return UnitStats(
        row["compute_units"], row["runs"],
        {s: row[f"fail_{s}"] for s in FAILURE_STATUSES if row[f"fail_{s}"]},
        {k: row[f"median_{k}"] for k in metric_keys}, {k: row[f"count_{k}"] for k in metric_keys})


OVERVIEW_METRICS = ("warm", "load_cold", "load_cached", "load_in_memory", "first_prediction")


def device_unit_stats(runs, metric_keys=OVERVIEW_METRICS, by: str = "device") -> dict[DeviceInfo, dict[str, UnitStats]]:
    """{device: {compute_units: UnitStats}} for a Run queryset, oldest chip first. Two queries.

    by="chip" groups all devices of a chip into one row (its DeviceInfo has no pk and the chip as name).
    """
    if by not in ("device", "chip"):
        raise ValueError("by is 'device' or 'chip'")
    key = "device_id" if by == "device" else "device__chip"
    rows = list(runs.values(key, "compute_units").annotate(**_unit_stats_annotations(metric_keys)).order_by())
    groups = _row_groups(by, {r[key] for r in rows})
    out: dict[DeviceInfo, dict[str, UnitStats]] = {}
    for row in rows:
        out.setdefault(groups[row[key]], {})[row["compute_units"]] = _unit_stats(row, metric_keys)
    return dict(sorted(out.items(), key=lambda kv: kv[0].order))


def well_sampled_share(stats: dict[DeviceInfo, dict[str, UnitStats]]) -> float:
    """Share of non-empty cells with at least MIN_RUNS runs."""
    cells = [s.runs for units in stats.values() for s in units.values()]
    return sum(n >= min_runs() for n in cells) / len(cells) if cells else 1.0


# --- Compare: distributions per device and unit, failure rates, load breakdown ---------------------------------------

@dataclass(frozen=True)
class BoxStats:
    """Distribution of one metric over runs: whiskers at the 5th and 95th percentiles."""

    low: float | None
    q1: float | None
    median: float | None
    q3: float | None
    high: float | None
    n: int  # runs with a value
    runs: int  # all runs, failed ones included
    failures: int
    failure_interval: tuple | None = None  # (low, high), when precomputed (dashboard.rollups)


BOX_QUANTILES = {"low": 0.05, "q1": 0.25, "median": 0.5, "q3": 0.75, "high": 0.95}


def distribution_by_unit(runs, metric_key: str, by: str = "chip") -> dict[DeviceInfo, dict[str, BoxStats]]:
    """{row: {compute_units: BoxStats}} of one metric, rows per device or per chip, oldest chip first.

    One GROUP BY query (PostgreSQL shares one sort between the percentiles of a group) and one for row labels.
    """
    m = METRICS[metric_key]
    key = "device_id" if by == "device" else "device__chip"
    ann = {name: Percentile(m.column, p, filter=m.q()) for name, p in BOX_QUANTILES.items()}
    ann.update(n=Count(m.column, filter=m.q()), runs=Count("id"), failures=count_failures())
    rows = list(runs.values(key, "compute_units").annotate(**ann).order_by())
    groups = _row_groups(by, {r[key] for r in rows})
    out: dict[DeviceInfo, dict[str, BoxStats]] = {}
    for r in rows:
        out.setdefault(groups[r[key]], {})[r["compute_units"]] = BoxStats(
            r["low"], r["q1"], r["median"], r["q3"], r["high"], r["n"], r["runs"], r["failures"])
    return dict(sorted(out.items(), key=lambda kv: kv[0].order))


def _row_groups(by, keys):
    if by == "device":
        return {d.pk: DeviceInfo.of(d) for d in Device.objects.filter(pk__in=keys)}
    ranks = dict(Device.objects.filter(chip__in=keys).values_list("chip", "chip_rank"))
    return {chip: DeviceInfo(None, "", chip or "unknown chip", chip, ranks.get(chip), None) for chip in keys}


STAGES = ("decrypt", "compile", "load", "first_prediction")
LOAD_KIND_ORDER = ("cold", "cached", "in_memory")


@dataclass(frozen=True)
class UnitTimings:
    """Per compute unit: median of each launch stage per load kind, and first vs warm prediction."""

    compute_units: str
    runs: int
    stages: dict  # load_kind -> {stage: median ms or None}
    stage_runs: dict  # load_kind -> runs with a load time
    first_prediction: float | None
    warm: float | None
    first_runs: int
    warm_runs: int


def unit_timings(runs) -> list[UnitTimings]:
    """One GROUP BY compute_units query with per-load-kind medians of decrypt, compile, load, first prediction."""
    from collector.models import COMPUTE_UNITS

    ann = {"runs": Count("id"), "first": Median("first_prediction_ms"), "warm": Median("prediction_median_ms"),
           "first_runs": Count("first_prediction_ms"), "warm_runs": Count("prediction_median_ms")}
    for kind in LOAD_KIND_ORDER:
        ann[f"{kind}__n"] = Count("load_ms", filter=Q(load_kind=kind))
        for stage in STAGES:
            ann[f"{kind}__{stage}"] = Median(f"{stage}_ms", filter=Q(load_kind=kind))
    rows = {r["compute_units"]: r for r in runs.values("compute_units").annotate(**ann).order_by()}
    out = []
    for unit in COMPUTE_UNITS:
        r = rows.get(unit)
        if r is None:
            continue
        out.append(UnitTimings(
            unit, r["runs"], {k: {s: r[f"{k}__{s}"] for s in STAGES} for k in LOAD_KIND_ORDER},
            {k: r[f"{k}__n"] for k in LOAD_KIND_ORDER}, r["first"], r["warm"], r["first_runs"], r["warm_runs"]))
    return out


# --- Versions: a metric across model versions and over time ----------------------------------------------------------

@dataclass(frozen=True)
class MedianBand:
    """A median with an approximate 95% interval from the interquartile range (see `median_band`)."""

    median: float | None
    low: float | None
    high: float | None
    n: int


def median_band(median, q1, q3, n) -> MedianBand:
    """Median +- 1.57 IQR / sqrt(n): the approximate 95% interval of a median that box-plot notches use
    (McGill, Tukey & Larsen 1978). Computed from quartiles the database returns, so no run is loaded; two versions
    whose bands do not overlap differ at roughly the 5% level."""
    if median is None or q1 is None or q3 is None or n < 1:
        return MedianBand(median, None, None, n)
    half = 1.57 * (q3 - q1) / n ** 0.5
    return MedianBand(median, median - half, median + half, n)


def _band_annotations(m: Metric):
    return {"median": Median(m.column, filter=m.q()), "q1": Percentile(m.column, 0.25, filter=m.q()),
            "q3": Percentile(m.column, 0.75, filter=m.q()), "n": Count(m.column, filter=m.q())}


def metric_by_version(scope: Scope, metric_key: str, by: str = "chip"):
    """{row DeviceInfo: {compute_units: {version string: MedianBand}}} over all versions of the selected model."""
    m = METRICS[metric_key]
    key = "device_id" if by == "device" else "device__chip"
    rows = list(scope.runs("model").values("model_version_id", key, "compute_units")
                .annotate(**_band_annotations(m)).order_by())
    versions = {mv.pk: mv.version for mv in scope.versions}
    groups = _row_groups(by, {r[key] for r in rows})
    out: dict = {}
    for r in rows:
        if not r["n"]:
            continue
        out.setdefault(groups[r[key]], {}).setdefault(r["compute_units"], {})[versions[r["model_version_id"]]] = \
            median_band(r["median"], r["q1"], r["q3"], r["n"])
    return dict(sorted(out.items(), key=lambda kv: kv[0].order))


def metric_by_day(scope: Scope, metric_key: str):
    """({compute_units: {date: MedianBand}}, {version: first day seen}) over all versions of the model."""
    from django.db.models import Min
    from django.db.models.functions import TruncDate

    m = METRICS[metric_key]
    runs = scope.runs("model")
    rows = list(runs.annotate(day=TruncDate("started_at")).values("day", "compute_units")
                .annotate(**_band_annotations(m)).order_by())
    out: dict = {}
    for r in rows:
        if r["n"]:
            out.setdefault(r["compute_units"], {})[r["day"]] = median_band(r["median"], r["q1"], r["q3"], r["n"])
    versions = {mv.pk: mv.version for mv in scope.versions}
    starts = {versions[r["model_version_id"]]: r["first"]
              for r in runs.values("model_version_id").annotate(first=Min("started_at")).order_by()}
    return out, starts


# --- Fleet ---------------------------------------------------------------------------------------------------------

def fleet_counts(runs) -> dict:
    """Runs, distinct devices and model versions, failures, first and last run: one query."""
    from django.db.models import Max, Min

    return runs.aggregate(runs=Count("id"), devices=Count("device", distinct=True),
                          versions=Count("model_version", distinct=True), failures=count_failures(),
                          first=Min("started_at"), last=Max("started_at"))


def failures_by_unit(runs) -> list[dict]:
    """[{compute_units, status, failure_stage, n}] for every combination seen (ok runs too, for the totals)."""
    return list(runs.values("compute_units", "status", "failure_stage").annotate(n=Count("id")).order_by())


def recent_runs(runs, limit: int = 20):
    """The last uploads (by id, i.e. insertion order: uses the primary key index, whatever the table size)."""
    return list(runs.select_related("device", "model_version").defer("predictions_ms").order_by("-id")[:limit])


# --- Run detail ------------------------------------------------------------------------------------------------------

def run_for(visible, run_id):
    """The run if one of the visible projects owns it, else None."""
    return (Run.objects.filter(project__in=visible, run_id=run_id)
            .select_related("project", "model_version", "device").first())


def compute_plan_summary(run, limit: int = 200):
    """({device: {"ops": n, "cost": summed estimated cost}}, the `limit` costliest ops, total op count)."""
    from django.db.models import Sum

    from collector.models import ComputePlanEntry

    entries = ComputePlanEntry.objects.filter(run=run)
    by_device = {r["device"]: {"ops": r["ops"], "cost": r["cost"]}
                 for r in entries.values("device").annotate(ops=Count("id"), cost=Sum("estimated_cost")).order_by()}
    top = list(entries.order_by(F("estimated_cost").desc(nulls_last=True), "id")[:limit])
    return by_device, top, sum(d["ops"] for d in by_device.values())

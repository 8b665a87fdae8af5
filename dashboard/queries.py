"""What the dashboard pages ask the database. Views call these; figure builders receive their plain results.

Every page aggregates in the database over the per-run summary columns (`prediction_median_ms`, `load_ms`, ...)
through the one evidence query (`collector.evidence.gather`: runs and failures of every run, quantiles from
successful runs only), as the policy's evidence and GET /api/v1/stats do; no function here loads all runs into
Python, and each issues a fixed number of queries whatever the number of runs.
"""
from dataclasses import dataclass, field

from django.db.models import BooleanField, Count, Exists, ExpressionWrapper, F, OuterRef, Q

from collector.evidence import MEDIAN, Evidence, Outcomes, Timing, failures_by_stage, gather
from collector.models import Device, ModelVersion, Project, Run, RunSketchConfiguration
from collector.sketches import pending
from insights.vocabulary import COMPUTE_UNITS, LAUNCH_STAGES, LOAD_KINDS, LOAD_METRICS, Metric, version_key
from perfboard.conf import perfboard_setting

from .filters import Filters


def min_runs() -> int:
    return perfboard_setting("MIN_RUNS")


@dataclass
class Scope:
    """The project and model version a page shows, resolved from the filters against what the user may see.

    `filters` is the request's filters with project, model and version filled in with the defaults used (the
    first visible project, its first model by name with runs, that model's highest version with runs:
    `default_version`), so links keep the scope.
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
    # Whether a version has runs: a version uploaded only for profiling (a lint or conversion job) has none and must
    # not become the default. Read from the configuration sketch rows (every run has its configuration's row, and
    # they are bounded by the configurations benchmarked), one probe of their key's index per version: an EXISTS over
    # the runs per version hung on the planner's statistics (420 versions: 11.6 s), and the project's distinct
    # versions of those rows read them all (at 1M runs 4,770 rows, 6.6 ms against 0.3 for the probes).
    # The runs not yet in their rows (collector.sketches.pending) too, in the same statement: their versions read
    # once (PostgreSQL hashes them), not probed per version (with 5,000 runs pending over 418 versions, each probe
    # walked the pending runs' ids: 38 ms a page).
    has_runs = Exists(RunSketchConfiguration.objects.filter(model_version=OuterRef("pk")))
    fresh = pending(Run.objects.filter(project=scope.project))
    if fresh is not None:
        has_runs = ExpressionWrapper(Q(has_runs) | Q(pk__in=fresh.values("model_version_id")),
                                     output_field=BooleanField())
    scope.model_versions = sorted(ModelVersion.objects.filter(project=scope.project).annotate(has_runs=has_runs),
                                  key=lambda mv: (mv.name, version_key(mv.version)))
    measured = [mv for mv in scope.model_versions if mv.has_runs]
    model = filters.model
    if not model and scope.model_versions:  # the first model by name that has runs (else the first)
        model = (measured or scope.model_versions)[0].name
    of_model = [mv for mv in scope.model_versions if mv.name == model]
    if filters.version:
        scope.model_version = next((mv for mv in of_model if mv.version == filters.version), None)
    elif of_model:
        scope.model_version = default_version(of_model)
    scope.filters = filters.replace(project=scope.project.slug, model=model,
                                    version=scope.model_version.version if scope.model_version else filters.version)
    return scope


def default_version(versions: list) -> ModelVersion:
    """The version a page shows when the link names none: the newest (by ``insights.vocabulary.version_key``) that
    has runs, else the newest. ``versions``: one model's versions, oldest first, each with ``has_runs``."""
    measured = [mv for mv in versions if getattr(mv, "has_runs", True)]
    return (measured or versions)[-1]


def device_options():
    """All devices of the catalogue (and unknown ones seen), oldest chip first: the device and chip filters."""
    devices = list(Device.objects.order_by("chip_rank", "name", "identifier"))
    chips = list(dict.fromkeys(d.chip for d in devices if d.chip))
    return devices, chips


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


def coverage(scope: Scope, span: str = "model", units=None) -> list[CoverageCell]:
    """Runs per (model version, device, OS major, compute units), including the cells nobody has run yet.

    The grid is every model version in the span x every device and OS major seen in those runs x every compute
    unit (or the filtered ones), so an empty cell means "benchmark this next". One GROUP BY query and one for the
    devices. Sorted by model, version, chip generation, device, OS, unit.
    """
    rows = coverage_rows(scope.runs(span))
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


def coverage_rows(runs, by=("version", "device", "os_major", "compute_units")) -> list[dict]:
    """Runs and failures per coverage cell (the evidence query without metrics), as `coverage` takes them."""
    names = {"version": "model_version_id", "device": "device_id", "os_major": "os_major",
             "compute_units": "compute_units"}
    return [{**{names[b]: v for b, v in zip(by, e.group)}, "n": e.runs, "failures": e.failure_count}
            for e in gather(runs, by)]


# --- Overview: device x compute-unit matrices ---------------------------------------------------------------------

# The metrics every page can show are the vocabulary's (insights.vocabulary.METRICS), under the same keys as
# GET /api/v1/stats. Older links named some differently; pages still read those names.
METRIC_ALIASES = {"warm": "prediction", "warm_p90": "prediction_p90", "peak_memory": "peak_memory_mb"}


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
class UnitStats(Outcomes):
    """What the runs of one compute unit on one device (or group) showed."""

    compute_units: str
    runs: int
    failures: dict  # status -> count, failed statuses only
    metrics: dict  # metric key -> collector.evidence.Timing (timed runs and quantiles, from successful runs)

    @classmethod
    def of(cls, e: Evidence) -> "UnitStats":
        """From the evidence query's row of one (device or chip, compute units) group."""
        return cls(e.group[-1], e.runs, dict(e.failures), dict(e.metrics))


OVERVIEW_METRICS = ("prediction", "load_cold", "load_cached", "load_in_memory", "first_prediction")
# What GET /api/v1/stats gives of a metric.
STATS_QUANTILES = {"median": 0.5, "p10": 0.1, "p90": 0.9}


def device_unit_stats(runs, metric_keys=OVERVIEW_METRICS, by: str = "device",
                      quantiles=MEDIAN) -> dict[DeviceInfo, dict[str, UnitStats]]:
    """{device: {compute_units: UnitStats}} for a Run queryset, oldest chip first. Two queries: the evidence query
    (collector.evidence.gather) and the row labels.

    The overview, the compare page and GET /api/v1/stats all read their numbers here.
    by="chip" groups all devices of a chip into one row (its DeviceInfo has no pk and the chip as name).
    """
    if by not in ("device", "chip"):
        raise ValueError("by is 'device' or 'chip'")
    evidence = gather(runs, (by, "compute_units"), metric_keys, quantiles)
    groups = _row_groups(by, {e.group[0] for e in evidence})
    out: dict[DeviceInfo, dict[str, UnitStats]] = {}
    for e in evidence:
        out.setdefault(groups[e.group[0]], {})[e.group[1]] = UnitStats.of(e)
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

    @classmethod
    def of(cls, stats: UnitStats, metric_key: str) -> "BoxStats":
        t = stats.metrics[metric_key]
        return cls(t["low"], t["q1"], t["median"], t["q3"], t["high"], t.n, stats.runs, stats.failure_count)


BOX_QUANTILES = {"low": 0.05, "q1": 0.25, "median": 0.5, "q3": 0.75, "high": 0.95}


def distribution_by_unit(runs, metric_key: str, by: str = "chip") -> dict[DeviceInfo, dict[str, BoxStats]]:
    """{row: {compute_units: BoxStats}} of one metric, rows per device or per chip, oldest chip first: the
    evidence query of `device_unit_stats` with the box quantiles (two queries)."""
    stats = device_unit_stats(runs, (metric_key,), by, BOX_QUANTILES)
    return {info: {unit: BoxStats.of(s, metric_key) for unit, s in units.items()} for info, units in stats.items()}


def _row_groups(by, keys):
    if by == "device":
        return {d.pk: DeviceInfo.of(d) for d in Device.objects.filter(pk__in=keys)}
    ranks = dict(Device.objects.filter(chip__in=keys).values_list("chip", "chip_rank"))
    return {chip: DeviceInfo(None, "", chip or "unknown chip", chip, ranks.get(chip), None) for chip in keys}


# Each launch stage's time per load kind, as metrics of the evidence query (successful runs of that kind); a load's
# own stage is the vocabulary's load metric.
STAGES = LAUNCH_STAGES
STAGE_METRICS = {(kind, stage): (LOAD_METRICS[kind] if stage == "load" else
                                 Metric(f"{kind}__{stage}", stage, "ms", f"{stage}_ms", "", kind))
                 for kind in LOAD_KINDS for stage in STAGES}
TIMING_METRICS = ("first_prediction", "prediction", *STAGE_METRICS.values())


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
    """Per compute unit, medians of decrypt, compile, load and first prediction per load kind, and of first and
    warm prediction: the evidence query grouped by compute units (one query; successful runs' timings only)."""
    rows = {e.group[0]: e for e in gather(runs, ("compute_units",), TIMING_METRICS)}
    return [timings_of(unit, rows[unit]) for unit in COMPUTE_UNITS if unit in rows]


def timings_of(unit: str, e: Evidence) -> UnitTimings:
    return UnitTimings(
        unit, e.runs, {k: {s: e.median(STAGE_METRICS[k, s].key) for s in STAGES} for k in LOAD_KINDS},
        {k: e.timed(LOAD_METRICS[k].key) for k in LOAD_KINDS}, e.median("first_prediction"), e.median("prediction"),
        e.timed("first_prediction"), e.timed("prediction"))


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


BAND_QUANTILES = {name: BOX_QUANTILES[name] for name in ("q1", "median", "q3")}


def band_of(t: Timing) -> MedianBand:
    return median_band(t["median"], t["q1"], t["q3"], t.n)


def metric_by_version(scope: Scope, metric_key: str, by: str = "chip"):
    """{row DeviceInfo: {compute_units: {version string: MedianBand}}} over all versions of the selected model."""
    evidence = gather(scope.runs("model"), ("version", by, "compute_units"), (metric_key,), BAND_QUANTILES)
    versions = {mv.pk: mv.version for mv in scope.versions}
    groups = _row_groups(by, {e.group[1] for e in evidence})
    out: dict = {}
    for e in evidence:
        t = e.metrics[metric_key]
        if not t.n:
            continue
        version, row, unit = e.group
        out.setdefault(groups[row], {}).setdefault(unit, {})[versions[version]] = band_of(t)
    return dict(sorted(out.items(), key=lambda kv: kv[0].order))


def metric_by_day(scope: Scope, metric_key: str):
    """({(compute_units, version): {date: MedianBand}}, {version: first day with runs}) over all versions of the
    model. Each version is its own segment: the medians of two versions live on the same day are not pooled."""
    versions = {mv.pk: mv.version for mv in scope.versions}
    out: dict = {}
    starts: dict = {}
    for e in gather(scope.runs("model"), ("day", "version", "compute_units"), (metric_key,), BAND_QUANTILES):
        day, version, unit = e.group
        starts[versions[version]] = min(starts.get(versions[version], day), day)
        t = e.metrics[metric_key]
        if t.n:
            out.setdefault((unit, versions[version]), {})[day] = band_of(t)
    return out, starts


# --- Fleet ---------------------------------------------------------------------------------------------------------

def fleet_counts(runs) -> dict:
    """Runs, distinct devices and model versions, failures (sketch rows: the evidence query), first and last run
    (the ends of the (project, started_at) index)."""
    cells = gather(runs, ("version", "device"))
    ends = runs.order_by("started_at").values_list("started_at", flat=True)
    return {"runs": sum(e.runs for e in cells), "devices": len({e.group[1] for e in cells}),
            "versions": len({e.group[0] for e in cells}), "failures": sum(e.failure_count for e in cells),
            "first": ends.first() if cells else None, "last": ends.last() if cells else None}


def failures_by_unit(runs) -> tuple[list[Evidence], dict[str, dict[str, int]]]:
    """(runs and failures per status of each compute unit, {unit: {stage: failed runs}}): the evidence query and its
    failures by stage, both from the sketch rows when they answer."""
    stages = failures_by_stage(runs, ("compute_units",))
    return gather(runs, ("compute_units",)), {group[0]: counts for group, counts in stages.items()}


def recent_runs(runs, limit: int = 20):
    """The last uploads (by id, i.e. insertion order). Their ids are found first, from the (project, id) index alone:
    reading whole rows, PostgreSQL walked the primary key past every newer run of other projects when the project
    held most of the table (10M runs beside 110,000 newer ones: 14 ms against 0.1)."""
    newest = runs.order_by("-id").values("id")[:limit]
    return list(runs.filter(pk__in=newest).select_related("device", "model_version").order_by("-id"))


# --- Run detail ------------------------------------------------------------------------------------------------------

def run_for(visible, run_id):
    """The run if one of the visible projects owns it, else None."""
    return (Run.objects.filter(project__in=visible, run_id=run_id)
            .select_related("project", "model_version", "device", "prediction_series").first())


def compute_plan_summary(run, limit: int = 200):
    """({device: {"ops": n, "cost": summed estimated cost}}, the `limit` costliest ops, total op count)."""
    from django.db.models import Sum

    from collector.models import ComputePlanEntry

    entries = ComputePlanEntry.objects.filter(run=run)
    by_device = {r["device"]: {"ops": r["ops"], "cost": r["cost"]}
                 for r in entries.values("device").annotate(ops=Count("id"), cost=Sum("estimated_cost")).order_by()}
    top = list(entries.order_by(F("estimated_cost").desc(nulls_last=True), "id")[:limit])
    return by_device, top, sum(d["ops"] for d in by_device.values())

"""Which series a regression check tests, and which detected changes become alerts (issue 6). Pure Python.

The database side (``alerts.check``) hands over one model's runs as plain rows (:data:`COLUMNS`, from a
``values_list``); this module cuts them into series, runs :mod:`insights.detection` on each and returns
:class:`Finding` objects, the alerts to be.

A series is (model, chip or device, compute units, metric, OS cohort):

* metrics: cold, cached and in-memory loads as three series (a cached load is 5-10x shorter than a cold one;
  mixed, a change in the share of cold loads would look like a regression), first prediction, warm median and p90
  (each run's own summary), peak memory, and the failure rate (crash, oom, error, timeout);
* timings come from successful runs only: a failed run's partial timings describe the failure;
* level: every chip's devices together, and every device alone;
* OS cohort: all OS versions together, and each OS major alone (an OS update invalidates the compile cache; a
  regression confined to one OS must not hide inside the others). A cohort with too few runs simply yields nothing:
  the detector needs ``min_runs_per_window`` runs on both sides.

One regression is tested in several series (the chip's, each of its devices', each OS cohort's). Coarsest of all, the
timing series of a chip's compute units are searched together (:func:`_shared_findings`): a model version usually
slows every unit, and each unit alone may have too few cold or cached loads to show it. Then, for a chip and
compute units, levels are tried from coarse to fine: chip/all OS, chip/each OS, device/all OS, device/each OS; a
(kind, metric) that a coarser level showed is not reported again by a finer one. So a slowdown on every A16 device
is one chip-level alert, not five, and a finer series (fewer runs) cannot add the same step placed at a wrong
version; a slowdown confined to one device or one OS still gets its own alert, since the coarser series miss it.
When the chip's all-OS series shows a slowdown that one OS cohort shows at the same version while the other cohorts
together did not change (:func:`_unchanged_elsewhere`), the cohort's alert replaces the chip's: it names the OS.
The finer levels are held to ``drilldown_alpha`` instead of ``alpha`` (stricter by default: there are many of
them), and the series of one finer level are tested as a family (:func:`_family_settings`, Bonferroni): a chip with
seven devices tests each at a seventh of ``drilldown_alpha``, so many small series do not add many false alerts.

Placement (:func:`find_placement_shifts`): per chip, compute units and OS major the newest uploaded plan of each
version is compared with the previous version's, and per chip, compute units and version each OS major's plan with
the previous OS major's; :func:`insights.detection.placement_shift` decides.
"""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from .columns import COLUMNS, RunColumns, version_ranges
from .detection import (Change, compare_times, detect_crash_rate_increases_in, detect_shared_slowdowns_in,
                        detect_slowdowns_in, placement_shift)
from .settings import DetectionSettings
from .vocabulary import (COMPUTE_UNITS, CRASH_METRIC, METRICS, OK, PLACEMENT_METRIC, RESHAPE_FREQUENCIES,
                         SPECIALIZATION_STRATEGIES, Configuration, version_key)

_I = {name: i for i, name in enumerate(COLUMNS)}  # COLUMNS: one run as a tuple (insights.columns)

# alert metric name -> (column, load kind the series is restricted to), from the metric registry
TIME_METRICS = {m.alert_name: (m.column, m.load_kind) for m in METRICS.values()}


@dataclass(frozen=True)
class SeriesKey:
    """``device`` is None for a whole chip; ``os_major`` is None for all OS versions together."""

    model: str
    chip: str
    device: str | None
    compute_units: str
    metric: str
    os_major: int | None = None
    baseline_os_major: int | None = None  # placement shifts between OS versions only
    # The runs' optimization hints: with compute_units, the configuration (series never pool configurations).
    specialization_strategy: str = SPECIALIZATION_STRATEGIES[0]
    reshape_frequency: str = RESHAPE_FREQUENCIES[0]

    @property
    def hints(self) -> dict[str, str]:
        """The hints that differ from Apple's defaults (empty for a series of default runs)."""
        return Configuration(self.compute_units, self.specialization_strategy, self.reshape_frequency).hints

    @property
    def load_kind(self) -> str | None:
        return TIME_METRICS.get(self.metric, (None, None))[1]


@dataclass(frozen=True)
class Finding:
    """A regression to alert on: the series, the detected change and the run ids behind both windows."""

    kind: str  # slowdown, crash_rate or placement
    key: SeriesKey
    version: str
    baseline_version: str
    baseline: float
    current: float
    change: float
    p_value: float | None
    runs_baseline: int
    runs_current: int
    baseline_run_ids: list[int] = field(default_factory=list)
    current_run_ids: list[int] = field(default_factory=list)
    ops: list[str] = field(default_factory=list)


def metric_rows(rows: list[tuple], metric: str) -> tuple[int, list[tuple]]:
    """(column index, the successful runs that measure ``metric``): timings of failed runs describe the failure."""
    column, kind = TIME_METRICS[metric]
    col, status, load_kind = _I[column], _I["status"], _I["load_kind"]
    return col, [r for r in rows if r[status] == OK and r[col] is not None and (kind is None or r[load_kind] == kind)]


def _metric_index(cols: RunColumns, index: np.ndarray, metric: str) -> tuple[str, np.ndarray]:
    """:func:`metric_rows` on columns: (value column, the runs of ``index`` that measure ``metric``)."""
    return TIME_METRICS[metric][0], index[cols.measures[metric][index]]


def _ids(cols: RunColumns, index: np.ndarray, runs: range) -> list[int]:
    return cols.ids[index[runs.start:runs.stop]].tolist()


def _finding(kind: str, key: SeriesKey, change: Change, cols: RunColumns, index: np.ndarray) -> Finding:
    c = change.comparison
    return Finding(kind, key, change.version, change.baseline_version, c.baseline, c.current, c.change, c.p_value,
                   c.runs_baseline, c.runs_current, _ids(cols, index, change.baseline_runs),
                   _ids(cols, index, change.current_runs))


def _unchanged_elsewhere(f: Finding, cols: RunColumns, group: np.ndarray, settings: DetectionSettings) -> bool:
    """For a slowdown found in one OS cohort: did the chip's other OS cohorts, together, demonstrably not change at
    that version? Enough runs on both sides and a median change under ``min_effect``: then the slowdown is confined
    to the cohort (an OS update invalidating the compile cache), not a chip-wide one the cohort merely shows too."""
    col, picked = _metric_index(cols, group[cols.os_major[group] != f.key.os_major], f.key.metric)
    rank = cols.rank[cols.version[picked]]
    values = cols.values[col][picked]
    at = cols.rank[cols.versions.index(f.version)]
    result = compare_times(values[rank < at][-settings.max_baseline_runs:],
                           values[rank >= at][:settings.max_current_runs], settings)
    return result.enough and abs(result.change) < settings.min_effect


def _series_findings(model: str, cols: RunColumns, device: str | None, units: str, os_major: int | None,
                     index: np.ndarray, settings: DetectionSettings, skip: set = frozenset()) -> list[Finding]:
    """Every regression in one (level, compute units, OS cohort) group of runs (``index``, in the check's order),
    but those of the (kind, metric) pairs in ``skip``: their series are not searched (they still count in the
    family of timing metrics)."""
    out = []
    if ("crash_rate", CRASH_METRIC) not in skip:
        key = SeriesKey(model, cols.chip, device, units, CRASH_METRIC, os_major)
        groups = version_ranges(cols.version[index], cols.versions)
        for change in detect_crash_rate_increases_in(groups, ~cols.ok[index], settings):
            out.append(_finding("crash_rate", key, change, cols, index))
    series = {}
    for metric in TIME_METRICS:
        col, picked = _metric_index(cols, index, metric)
        if picked.size >= 2 * settings.min_runs_per_window:
            series[metric] = (col, picked)
    # The timing metrics of one group of runs are a family too (:func:`_family_settings`).
    metric_settings = _family_settings(settings, len(series))
    for metric, (col, picked) in series.items():
        if ("slowdown", metric) in skip:
            continue
        changes = [c for c in detect_slowdowns_in(version_ranges(cols.version[picked], cols.versions),
                                                  cols.values[col][picked], metric_settings) if c.is_regression]
        key = SeriesKey(model, cols.chip, device, units, metric, os_major)
        out.extend(_finding("slowdown", key, c, cols, picked) for c in changes)
    return out


def find_regressions(model: str, rows: Iterable[tuple], settings: DetectionSettings = DetectionSettings(),
                     versions: Iterable[str] | None = None) -> list[Finding]:
    """Slowdowns and failure-rate increases of one model, from its runs as :data:`COLUMNS` tuples (any order):
    :func:`find_chip_regressions` of each chip."""
    versions = list(versions) if versions is not None else None
    return [f for chip, cols in sorted(RunColumns.from_rows(rows).items())
            for f in find_chip_regressions(model, cols, settings, versions)]


def find_chip_regressions(model: str, cols: RunColumns, settings: DetectionSettings = DetectionSettings(),
                          versions: Iterable[str] | None = None) -> list[Finding]:
    """Slowdowns and failure-rate increases of one model on one chip, from runs of one configuration's hints.

    ``versions``: report only changes at these versions (a check started for one model version); the series
    still reach back over the versions before them. Each regression is reported once, at the coarsest series that
    shows it (see the module docstring).
    """
    wanted = set(versions) if versions is not None else None
    by_units = _split(np.arange(len(cols)), cols.compute_units, COMPUTE_UNITS)

    def in_scope(group: np.ndarray) -> bool:
        return wanted is None or bool(np.isin(cols.version[group], [cols.versions.index(v) for v in wanted
                                                                    if v in cols.versions]).any())

    if not any(in_scope(group) for group in by_units.values()):
        return []
    shared: dict[str, list[Finding]] = defaultdict(list)
    for f in _shared_findings(model, cols, by_units, settings):
        shared[f.key.compute_units].append(f)
    found: list[Finding] = []
    for units, group in sorted(by_units.items()):
        if in_scope(group):
            found += _group_findings(model, cols, units, group, shared[units], settings, wanted)
    return found


def _group_findings(model: str, cols: RunColumns, units: str, group: np.ndarray, shared: list[Finding],
                    settings: DetectionSettings, wanted: set[str] | None) -> list[Finding]:
    """The findings of one chip and compute units: ``shared`` (found with the chip's other units), then the levels
    from coarse to fine (see the module docstring)."""
    found: list[Finding] = []
    by_os = _split(group, cols.os_major)
    by_device = _split(group, cols.device, cols.devices)
    levels = [[(None, None, group)],
              [(None, os_major, rows) for os_major, rows in sorted(by_os.items()) if len(by_os) > 1],
              # a chip of one device: its series are the chip's
              [(device, None, rows) for device, rows in sorted(by_device.items()) if len(by_device) > 1],
              [(device, os_major, rows) for device, rows_device in sorted(by_device.items())
               for os_major, rows in sorted(_split(rows_device, cols.os_major).items())
               if len(by_os) > 1 and len(_split(rows_device, cols.os_major)) > 1]]
    covered: set = set()  # (kind, metric) already shown by a coarser series of this chip and compute units
    chip_wide: dict[tuple, Finding] = {}  # (kind, metric, version) -> the chip's all-OS finding
    for f in shared:  # the coarsest: every compute unit of the chip together
        covered.add((f.kind, f.key.metric))
        chip_wide[(f.kind, f.key.metric, f.version)] = f
        if wanted is None or f.version in wanted:
            found.append(f)
    for depth, level in enumerate(levels):
        shown = set()
        level_alpha = settings.alpha if depth == 0 else settings.drilldown_alpha
        testable = sum(rows.size >= 2 * settings.min_runs_per_window for _, _, rows in level)
        level_settings = _family_settings(replace(settings, alpha=level_alpha), testable)
        # What the loop below would drop is not searched for: a covered (kind, metric) past the chip's own series
        # (depth 0 fills chip_wide), but at the OS cohorts the slowdowns that may replace a chip-wide one.
        may_replace = {("slowdown", m) for k, m, _ in chip_wide if k == "slowdown"} if depth == 1 else set()
        skip = covered - may_replace if depth > 0 else set()
        for device, os_major, rows in level:
            for f in _series_findings(model, cols, device, units, os_major, rows, level_settings, skip):
                if depth == 0:
                    chip_wide[(f.kind, f.key.metric, f.version)] = f
                if (f.kind, f.key.metric) in covered:
                    # The coarser series' alert covers it (a finer one often misplaces the step), unless it
                    # is the chip's own OS cohort and the other cohorts did not change: then it names the OS.
                    wide = chip_wide.get((f.kind, f.key.metric, f.version))
                    if not (depth == 1 and f.kind == "slowdown" and wide is not None
                            and _unchanged_elsewhere(f, cols, group, settings)):
                        continue
                    found[:] = [g for g in found if g is not wide]
                shown.add((f.kind, f.key.metric))
                if wanted is None or f.version in wanted:
                    found.append(f)
        covered |= shown
    return found


def _shared_findings(model: str, cols: RunColumns, groups: dict[str, np.ndarray],
                     settings: DetectionSettings) -> list[Finding]:
    """Slowdowns that a chip's compute units share, found on all their runs together
    (:func:`insights.detection.detect_shared_slowdowns`), as one finding per compute unit that shows the step in its
    own runs too: the same version, a change of at least ``min_effect`` and ``shared_unit_alpha`` (a test only
    asked once the shared step is significant). Its p-value is the larger of the two, as a gatekeeping procedure
    reports it. A model version usually slows every compute unit; each unit alone may have too few cold or cached
    loads to show it (benchmarks/fleet_detection.py)."""
    series = {}
    for metric in TIME_METRICS:
        strata = {}
        for units, index in groups.items():
            col, picked = _metric_index(cols, index, metric)
            if picked.size:
                strata[units] = (col, picked)
        if len(strata) > 1:
            series[metric] = strata
    if not series:
        return []
    versions = [cols.versions[code] for code in np.unique(cols.version)]  # codes are in version order
    metric_settings = _family_settings(settings, len(series))
    unit_settings = replace(settings, alpha=settings.shared_unit_alpha,
                            min_runs_per_window=max(2, settings.min_runs_per_window // 2))
    out = []
    for metric, strata in series.items():
        points = {units: (version_ranges(cols.version[picked], cols.versions), cols.values[col][picked])
                  for units, (col, picked) in strata.items()}
        for step in detect_shared_slowdowns_in(points, versions, metric_settings):
            if not step.is_regression:
                continue
            for units, (base, current) in sorted(step.windows.items()):
                values = points[units][1]
                own = compare_times(values[base.start:base.stop], values[current.start:current.stop], unit_settings)
                if not (own.significant and own.change > 0):
                    continue
                change = Change("slowdown", step.version, step.baseline_version,
                                replace(own, p_value=max(own.p_value, step.p_value)), base, current)
                out.append(_finding("slowdown", SeriesKey(model, cols.chip, None, units, metric), change, cols,
                                    strata[units][1]))
    return out


def _family_settings(settings: DetectionSettings, tests: int) -> DetectionSettings:
    """Significance levels for one level of finer series, tested as a family (Bonferroni): the ``tests`` devices
    or OS cohorts of one chip and compute units each get ``alpha / tests``, so that the level as a whole raises a
    false alert no more often than the chip's own series does. Without it, a large fleet's thousands of device and
    cohort series each add their ``alpha`` of false alerts."""
    if tests <= 1:
        return settings
    return replace(settings, alpha=settings.alpha / tests, crash_alpha=settings.crash_alpha / tests)


def _split(index: np.ndarray, codes: np.ndarray, names: Sequence | None = None) -> dict:
    """The runs of ``index`` by their code in ``codes`` (named by ``names``, else the code itself), in the order
    each first appears."""
    found, first = np.unique(codes[index], return_index=True)
    order = np.argsort(first, kind="stable")
    sub = codes[index]
    return {(names[c] if names is not None else int(c)): index[sub == c] for c in found[order].tolist()}


# --- Placement ------------------------------------------------------------------------------------------------

# One uploaded plan's run as the check reads it.
PLAN_COLUMNS = ("id", "version", "chip", "compute_units", "os_major", "started_at")


def newest_plan_runs(rows: Iterable[tuple]) -> dict[tuple, int]:
    """(version, chip, compute units, os major) -> id of the newest run with a compute plan there."""
    newest: dict[tuple, tuple] = {}
    for run_id, version, chip, units, os_major, started_at in rows:
        k = (version, chip, units, os_major)
        if k not in newest or (started_at, run_id) > newest[k]:
            newest[k] = (started_at, run_id)
    return {k: v[1] for k, v in newest.items()}


def find_placement_shifts(model: str, plans: dict[tuple, tuple[int, list[dict]]],
                          settings: DetectionSettings = DetectionSettings(),
                          versions: Iterable[str] | None = None) -> list[Finding]:
    """Ops that left the Neural Engine between consecutive versions (same chip, units, OS major) or between
    consecutive OS majors (same chip, units, version).

    ``plans``: (version, chip, compute units, os major) -> (run id, plan as ``[{"op", "device",
    "estimated_cost"}]``). ``baseline``/``current`` of a finding are the Neural Engine's share of ops, ``change``
    their difference (negative: ops left it).
    """
    wanted = set(versions) if versions is not None else None
    found = []

    def compare(key, version, baseline_version, before, after):
        if wanted is not None and version not in wanted:
            return
        shift = placement_shift(before[1], after[1], settings)
        if shift.is_regression:
            found.append(Finding("placement", key, version, baseline_version, shift.ops_share_baseline,
                                 shift.ops_share_current, shift.ops_share_current - shift.ops_share_baseline,
                                 None, 1, 1, [before[0]], [after[0]], sorted(shift.ops_left_neural_engine)))

    by_cohort: dict[tuple, list] = defaultdict(list)
    by_version: dict[tuple, list] = defaultdict(list)
    for (version, chip, units, os_major), plan in plans.items():
        by_cohort[(chip, units, os_major)].append((version, plan))
        by_version[(chip, units, version)].append((os_major, plan))
    for (chip, units, os_major), items in sorted(by_cohort.items(), key=str):
        items.sort(key=lambda item: version_key(item[0]))
        for (v0, p0), (v1, p1) in zip(items, items[1:]):
            compare(SeriesKey(model, chip, None, units, PLACEMENT_METRIC, os_major), v1, v0, p0, p1)
    for (chip, units, version), items in sorted(by_version.items(), key=str):
        items.sort(key=lambda item: item[0])
        for (o0, p0), (o1, p1) in zip(items, items[1:]):
            compare(SeriesKey(model, chip, None, units, PLACEMENT_METRIC, o1, baseline_os_major=o0),
                    version, version, p0, p1)
    return found

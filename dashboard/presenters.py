"""Shape query results (dashboard.queries) into the plain inputs of the figure builders (dashboard.figures).

Kept apart from both: queries stay about the database, figures stay about drawing, views stay glue.
"""
from collections import Counter
from functools import lru_cache

from insights.intervals import wilson_interval

from .figures.common import percent
from .figures.overview import Cell
from .queries import DeviceInfo, UnitStats

OVERVIEW_TABS = [
    ("prediction", "Warm prediction"),
    ("load_cold", "Cold load"),
    ("load_cached", "Cached load"),
    ("load_in_memory", "In-memory load"),
    ("first_prediction", "First prediction"),
    ("crash_rate", "Crash rate"),
]
OVERVIEW_TITLES = {
    "prediction": "Median warm prediction time",
    "load_cold": "Median cold load time (first load after install or OS update: includes the on-device compile)",
    "load_cached": "Median cached load time",
    "load_in_memory": "Median in-memory load time (model decrypted into memory, never on disk)",
    "first_prediction": "Median first prediction time",
    "crash_rate": "Failure rate (crash, OOM, error, timeout) with 95% Wilson interval on hover",
}


@lru_cache(maxsize=16384)
def failure_interval(failures: int, runs: int):
    """Wilson 95% interval of a failure rate (insights.intervals); a live page asks for a few hundred, memoised."""
    return wilson_interval(failures, runs, 0.95)


def clear_caches():
    """For benchmarks that want every request to pay the full price (the intervals)."""
    failure_interval.cache_clear()


def _interval(failures, runs):
    """(low, high) of a failure rate: Wilson from insights (memoised)."""
    interval = failure_interval(failures, runs)
    return interval.low, interval.high


def device_labels(devices) -> dict:
    """{DeviceInfo: "iPhone 15 Pro · A17 Pro"}; a name shared by several identifiers gets the identifier too."""
    names = Counter(d.name for d in devices)

    def label(d):
        if not d.identifier:  # a chip row
            return d.name
        return (f"{d.name} ({d.identifier})" if names[d.name] > 1 else d.name) + (f" · {d.chip}" if d.chip else "")

    return {d: label(d) for d in devices}


def overview_matrix(stats: dict[DeviceInfo, dict[str, UnitStats]], metric: str, units, choices: dict,
                    on_cpu: dict | None = None):
    """(rows, cells) for figures.overview.heatmap: rows in the order of `stats` (oldest chip first). ``choices``:
    per device pk (device rows) or chip (chip rows), the policy's configuration (policy.marks.policy_choices), whose
    unit gets the mark. ``on_cpu``: per row key, the Neural Engine units whose runs ran on the CPU
    (policy.marks.runs_on_cpu): their cells say so."""
    labels = device_labels(stats)
    on_cpu = on_cpu or {}
    rows, cells = [], {}
    for device, by_unit in stats.items():
        row = labels[device]
        rows.append(row)
        key = device.pk if device.identifier else device.chip
        cpu = frozenset(on_cpu.get(key, ()))
        best = choices[key].compute_units if key in choices else None
        for unit in units:
            s = by_unit.get(unit)
            if s is None:
                continue
            if metric == "crash_rate":
                low, high = _interval(s.failure_count, s.runs)
                cells[(row, unit)] = Cell(s.failure_rate, s.runs, low, high, unit == best,
                                          failures=s.failure_count, on_cpu=unit in cpu)
            else:
                timing = s.metrics.get(metric)  # (one metric's median: the cell's others are never computed)
                cells[(row, unit)] = Cell(timing.median if timing else None, timing.n if timing else 0,
                                          recommended=unit == best,
                                          failure_rate=s.failure_rate, on_cpu=unit in cpu)
    return rows, cells


def failure_hotspots(stats: dict[DeviceInfo, dict[str, UnitStats]], max_rate: float, limit: int = 15):
    """(device label, unit, failures, runs, rate, interval, statuses) of cells failing more often than `max_rate`,
    worst first: where the crashes are."""
    labels = device_labels(stats)
    out = []
    for device, by_unit in stats.items():
        for unit, s in by_unit.items():
            if s.runs and s.failure_rate > max_rate:
                low, high = _interval(s.failure_count, s.runs)
                out.append({"device": labels[device], "identifier": device.identifier, "chip": device.chip,"compute_units": unit,
                            "failures": s.failure_count, "runs": s.runs, "rate": s.failure_rate,
                            "low": low, "high": high,
                            "statuses": ", ".join(f"{k} {v}" for k, v in sorted(s.failures.items()))})
    for h in out:
        h["rate_text"] = percent(h["rate"])
        h["interval_text"] = f"{percent(h['low'])} – {percent(h['high'])}"
    out.sort(key=lambda h: (-h["low"], -h["rate"]))
    return out[:limit]


COMPARE_METRICS = [
    ("prediction", "Warm prediction"),
    ("prediction_p90", "Warm p90"),
    ("first_prediction", "First prediction"),
    ("load_cold", "Cold load"),
    ("load_cached", "Cached load"),
    ("load_in_memory", "In-memory load"),
    ("peak_memory_mb", "Peak memory"),
]


def compare_inputs(dist, units):
    """(rows, boxes, rates) for figures.compare.box_plot and failure_bars from queries.distribution_by_unit."""
    from .figures.compare import Box, Rate

    labels = device_labels(dist)
    rows, boxes, rates = [], {}, {}
    for device, by_unit in dist.items():
        row = labels[device]
        rows.append(row)
        for unit in units:
            s = by_unit.get(unit)
            if s is None:
                continue
            if s.median is not None:
                boxes[(row, unit)] = Box(s.low, s.q1, s.median, s.q3, s.high, s.n)
            low, high = _interval(s.failures, s.runs)
            rates[(row, unit)] = Rate(s.failures, s.runs, low, high)
    return rows, boxes, rates


def timing_inputs(timings, units):
    """Inputs of figures.compare.breakdown_bars and first_vs_warm from queries.unit_timings."""
    stages, counts, first, warm, first_counts = {}, {}, {}, {}, {}
    for t in timings:
        if t.compute_units not in units:
            continue
        for kind, by_stage in t.stages.items():
            if t.stage_runs.get(kind):
                stages[(kind, t.compute_units)] = by_stage
                counts[(kind, t.compute_units)] = t.stage_runs[kind]
        first[t.compute_units] = t.first_prediction
        warm[t.compute_units] = t.warm
        first_counts[t.compute_units] = t.first_runs
    return stages, counts, first, warm, first_counts


def versions_inputs(by_version, units):
    """(panels, points) for figures.versions.across_versions from queries.metric_by_version."""
    from .figures.versions import Point

    labels = device_labels(by_version)
    panels, points = [], {}
    for row, by_unit in by_version.items():
        panels.append(labels[row])
        for unit, by_v in by_unit.items():
            if unit not in units:
                continue
            for version, band in by_v.items():
                points[(labels[row], unit, version)] = Point(band.median, band.low, band.high, band.n)
    return panels, points


def time_series_inputs(by_day, units):
    """{unit or (unit, version): [(day, Point)]} for figures.versions.over_time."""
    from .figures.versions import Point

    return {key: [(day, Point(b.median, b.low, b.high, b.n)) for day, b in sorted(by_day[key].items())]
            for key in by_day if (key if isinstance(key, str) else key[0]) in units}


def failure_inputs(evidence, stages, units):
    """(totals {unit: runs}, by_status {(unit, status): n}, by_stage {(unit, stage): n}) of the units shown, from
    queries.failures_by_unit."""
    totals = {e.group[0]: e.runs for e in evidence if e.group[0] in units}
    by_status = {(e.group[0], status): n for e in evidence if e.group[0] in units for status, n in e.failures.items()}
    by_stage = {(unit, stage): n for unit, counts in stages.items() if unit in units for stage, n in counts.items()}
    return totals, by_status, by_stage


def coverage_inputs(cells, model_version):
    """(rows, os_majors, units, counts) of one model version's cells (queries.coverage) for the coverage matrix."""
    from .figures.common import COMPUTE_UNITS

    mine = [c for c in cells if (c.model, c.version) == (model_version.name, model_version.version)]
    names = Counter(c.device_name for c in {(c.device, c.device_name): c for c in mine}.values())
    label = {}
    for c in mine:
        name = f"{c.device_name} ({c.device})" if names[c.device_name] > 1 else c.device_name
        label[c.device] = f"{name} · {c.chip}" if c.chip else name
    rows = list(dict.fromkeys(label[c.device] for c in mine))
    os_majors = sorted({c.os_major for c in mine})
    units = [u for u in COMPUTE_UNITS if any(c.compute_units == u for c in mine)]
    counts = {(label[c.device], c.os_major, c.compute_units): c.runs for c in mine}
    return rows, os_majors, units, counts

"""What the policy pages ask the database, and how their answers become the plain inputs of
``policy.figures`` and of the templates. Statistics come from ``insights``; the policies themselves from
``policy.evidence`` (the same code as ``GET /api/v1/policy``).

Query budget: the policy table is five queries (``policy_table``); the cold-start split one of sketch rows (after one
count of the two coarse tiers' rows: ``collector.sketches.tier_for``); the variant A/B one (of sketch rows, else, for a filter the rows cannot answer, of at most ``PERFBOARD["AB_MAX_RUNS"]``
of the newest successful runs).
"""
from collections import Counter
from dataclasses import dataclass

from collector.evidence import gather, gather_values, or_zero
from collector.models import Run
from collector.sketches import RANK_ERROR, sketch_filter
from dashboard.figures.common import ms, percent
from insights.comparison import compare_variants
from insights.intervals import wilson_interval
from insights.policy import Policy, UnitAssessment, break_even_predictions
from insights.settings import ComparisonSettings
from insights.vocabulary import COMPUTE_UNITS, LAUNCH_STAGES, LOAD_KINDS, OK, Metric
from insights.weighted import Weighted
from perfboard.conf import comparison_settings, perfboard_setting, policy_settings

from .figures import Crossing, SessionLine, StageRow, VariantRow

# What an A/B comparison measures, in the user's words: (label, the stages summed, the stages a run must have).
# Decrypt and compile are optional (only in-memory loads decrypt; cached loads do not compile).
AB_METRICS = {
    "time_to_first_result": ("Time to first result (decrypt + compile + load + first prediction)",
                             ("decrypt_ms", "compile_ms", "load_ms", "first_prediction_ms"),
                             ("first_prediction_ms",)),
    "first_prediction": ("First prediction", ("first_prediction_ms",), ("first_prediction_ms",)),
    "load": ("Load (decrypt + compile + load)", ("decrypt_ms", "compile_ms", "load_ms"), ("load_ms",)),
    "warm": ("Warm prediction (median of each run)", ("prediction_median_ms",), ("prediction_median_ms",)),
}


def scope_runs(scope, skip=()):
    """The runs of the page's model version narrowed by the filters, except those named in ``skip``."""
    if scope.model_version is None:
        return Run.objects.none()
    # The version is one of the scope's project's (dashboard.queries.scope), so it alone selects the runs: with the
    # project too, PostgreSQL walked the project's time index past other versions' runs for the A/B's newest runs
    # (66,000 buffers against 20,000 on run_version_time, a version of 300,000 runs at 1M).
    runs = Run.objects.filter(model_version=scope.model_version)
    return scope.filters.apply(runs, skip=("project", "model", "version", *skip))


# --- policy table -----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class UnitCell:
    compute_units: str
    runs: int
    expected: str  # expected session time, formatted
    upper: str  # Wilson upper bound of the failure rate, formatted
    rate: str
    eligible: bool
    chosen: bool
    note: str
    source: str
    on_cpu: bool = False  # its runs asked for the Neural Engine and ran on the CPU (insights.fallback)
    hinted: tuple = ()  # (hints, expected session, eligible, chosen) of the unit's other configurations


def _how_sure(a: UnitAssessment | None, conf) -> dict:
    """The chosen unit's sample: runs, failures, whose runs, and the failure rate's interval in words."""
    if a is None or not a.runs:
        return {"runs": 0, "failures": 0, "source": "", "interval": "", "text": "no runs: untested default"}
    interval = wilson_interval(a.failures, a.runs, conf.confidence)
    return {"runs": a.runs, "failures": a.failures, "source": a.source,
            "interval": f"{percent(interval.low)}–{percent(interval.high)}",
            "text": f"{a.failures} of {a.runs:,} run{'s' if a.runs != 1 else ''} failed"}


def device_name(entry) -> str:
    """A policy entry's device as the pages name it: its marketing name, else the identifier."""
    return entry.device.name if entry.device is not None and entry.device.name else entry.name


def what_would_change(entry) -> list[dict]:
    """The runs that would change an entry's answer (insights.policy.what_would_change), fastest configuration
    first: each as its data and the sentence the policy page's last column shows; GET /api/v1/policy carries the
    same list."""
    name = device_name(entry)
    return [{**c.to_dict(), "text": c.text(name, entry.chip)} for c in entry.policy.changes]


def policy_rows(table, units=COMPUTE_UNITS, conf=None) -> list[dict]:
    """One row per device model for the template, in the table's order (oldest chip first): the marketing name,
    the answer (unit, fallback chain, expected session at the workload, basis, how sure), what more runs would change
    it (insights.policy.what_would_change, in words), and a cell per unit for the evidence table.

    Identifiers sharing a marketing name (an iPad's Wi-Fi and cellular models) make one row when their answers are
    the same, else one row each, named with the identifier.
    """
    conf = conf or policy_settings()
    rows = []
    for entry in table:
        policy = entry.policy
        cells = []
        for unit in units:
            a = policy.evidence.get(unit)
            hinted = tuple((" + ".join(o.configuration.hints.values()), ms(o.expected_session_ms), o.eligible,
                            o.label == policy.label)
                           for o in policy.evidence.values() if o.compute_units == unit and o.label != unit)
            if a is None:
                cells.append(UnitCell(unit, 0, "–", "–", "–", False, False, "", "", False, hinted) if hinted
                             else None)
                continue
            cells.append(UnitCell(unit, a.runs, ms(a.expected_session_ms), percent(a.crash_rate_upper),
                                  percent(a.crash_rate), a.eligible, a.label == policy.label, a.note,
                                  getattr(a, "source", ""), bool(a.runs_on_cpu), hinted))
        chosen = policy.chosen
        name = device_name(entry)
        changes = [c["text"] for c in what_would_change(entry)]
        row = {"identifier": entry.identifier, "identifiers": [entry.identifier], "name": name,
               "chip": entry.chip, "compute_units": policy.compute_units, "use": policy.label,
               "on_cpu": [a.label for a in policy.evidence.values() if a.runs_on_cpu], "fallback": policy.fallback,
               "basis": policy.basis, "reason": policy.reason, "cells": cells,
               "expected": ms(chosen.expected_session_ms) if chosen is not None else "–",
               "sure": _how_sure(chosen, conf), "changes": changes}
        answer = (name, policy.label, tuple(policy.fallback), policy.basis, row["expected"], tuple(changes),
                  tuple(row["on_cpu"]))
        previous = rows[-1] if rows else None
        if previous is not None and previous["answer"] == answer:
            previous["identifiers"].append(entry.identifier)
            continue
        row["answer"] = answer
        rows.append(row)
    names = Counter(r["name"] for r in rows)
    for r in rows:
        r["label"] = r["name"] if names[r["name"]] == 1 else f"{r['name']} ({', '.join(r['identifiers'])})"
    return rows


# --- break-even -------------------------------------------------------------------------------------------------

def _priced(a: UnitAssessment) -> bool:
    return None not in (a.load_ms_median, a.first_prediction_ms_median, a.prediction_ms_median)


def break_even_data(policy: Policy) -> tuple[list[SessionLine], list[Crossing]]:
    """Lines of every priced configuration (eligible or not; named by label, "cpuAndNeuralEngine + fastPrediction")
    and the crossings among eligible ones: the eligible one with the cheapest start (load + first prediction)
    against each eligible one predicting faster, and each hinted configuration against its unit with Apple's
    default hints (where ``fastPrediction`` pays back its slower load)."""
    priced = [a for a in policy.evidence.values() if _priced(a)]
    lines = [SessionLine(a.label, a.load_ms_median + a.first_prediction_ms_median, a.prediction_ms_median,
                         a.eligible, a.note, a.runs) for a in priced]
    eligible = [a for a in priced if a.eligible]
    pairs = []
    if eligible:
        cheapest = min(eligible, key=lambda a: a.load_ms_median + a.first_prediction_ms_median)
        pairs = [(cheapest, other) for other in eligible if other is not cheapest]
        defaults = {a.compute_units: a for a in eligible if not a.configuration.hints}
        pairs += [(defaults[a.compute_units], a) for a in eligible
                  if a.configuration.hints and a.compute_units in defaults
                  and defaults[a.compute_units] is not cheapest]
    crossings = []
    for cheaper, other in pairs:
        if other.prediction_ms_median >= cheaper.prediction_ms_median:
            continue
        n = break_even_predictions(cheaper, other)
        if n is not None:
            at = cheaper.load_ms_median + cheaper.first_prediction_ms_median + (n - 1) * cheaper.prediction_ms_median
            crossings.append(Crossing(cheaper.label, other.label, n, at))
    return lines, crossings


# --- cold start -------------------------------------------------------------------------------------------------

# Each launch stage's time and the time to first result (their per-run sum, a stage not reported counting 0:
# collector.sketches.launch_ms), over successful runs of each load kind (grouped by it, so no load_kind here).
COLD_START_METRICS = {**{stage: Metric(f"stage_{stage}", stage, "ms", f"{stage}_ms", "") for stage in LAUNCH_STAGES},
                      "total": Metric("time_to_first_result", "Time to first result", "ms", "launch_ms", "")}


def cold_start_rows(runs) -> list[StageRow]:
    """Median decrypt, compile, load and first-prediction times and the median total per (unit, load kind), over
    successful runs: the evidence query (sketch rows when the filters are row keys; one query)."""
    rows = [StageRow(*e.group, e.runs - e.failure_count, *(e.median(m.key) for m in COLD_START_METRICS.values()))
            for e in gather(runs, ("compute_units", "load_kind"), COLD_START_METRICS.values())
            if e.runs > e.failure_count]
    return sorted(rows, key=lambda r: (COMPUTE_UNITS.index(r.compute_units), LOAD_KINDS.index(r.load_kind)))


# --- variant A/B ------------------------------------------------------------------------------------------------

# The A/B metrics the sketch rows hold (the same value, defined the same way as AB_METRICS): the time to first result
# is the stage table's total, Load each run's decrypt + compile + load (collector.sketches.ready_ms).
AB_SKETCHED = {"time_to_first_result": COLD_START_METRICS["total"], "first_prediction": "first_prediction",
               "load": Metric("ready", "Load (decrypt + compile + load)", "ms", "ready_ms", ""),
               "warm": "prediction"}


def ab_max_runs() -> int:
    return int(perfboard_setting("AB_MAX_RUNS"))


def default_baseline(variants: list[str]) -> str:
    """"baseline" if a variant is named so, else runs without a variant, else the first name."""
    for candidate in ("baseline", ""):
        if candidate in variants:
            return candidate
    return variants[0] if variants else ""


@dataclass
class VariantComparisons:
    variants: list[str]
    baseline: str
    rows: list[VariantRow]
    runs_read: int
    capped: bool


def variant_comparisons(runs, metric: str, baseline: str | None = None,
                        conf: ComparisonSettings | None = None) -> VariantComparisons:
    """Each variant against the baseline variant, per (compute units, load kind), on one metric of successful runs.

    When the metric is sketched (``AB_SKETCHED``) and the filters are sketch row keys, every run's value counts: the
    groups' samples are their merged sketches (``collector.evidence.gather_values``: the values themselves up to
    ~200 a group, else the sketch's items standing for as many values, each within ``RANK_ERROR`` of its rank, an
    error ``compare_variants`` accounts for in the interval and the p-value). Otherwise one query reads the metric of
    at most ``ab_max_runs()`` of the newest successful runs that have it. Comparisons need at least 2 runs on each
    side; fewer than ``conf.min_runs`` are shown as "too few runs" (``conf``: PERFBOARD's COMPARISON_* unless given).
    """
    conf = conf or comparison_settings()
    sketched = AB_SKETCHED.get(metric)
    if sketched is not None and sketch_filter(runs) is not None:
        groups = gather_values(runs, ("variant", "compute_units", "load_kind"), sketched)
        read, capped = sum(sample.n for sample in groups.values()), False
    else:
        groups, read, capped = _newest_values(runs, metric)
    variants = sorted({key[0] for key in groups})
    if baseline is None or baseline not in variants:
        baseline = default_baseline(variants)
    rows = []
    for unit in COMPUTE_UNITS:
        for kind in LOAD_KINDS:
            base = groups.get((baseline, unit, kind), [])
            for candidate in variants:
                other = groups.get((candidate, unit, kind), [])
                if candidate == baseline or len(base) < 2 or len(other) < 2:
                    continue
                c = compare_variants(base, other, conf, (_rank_error(base), _rank_error(other)))
                rows.append(VariantRow(unit, kind, baseline, candidate, c.baseline_median, c.candidate_median,
                                       c.difference.estimate, c.difference.low, c.difference.high, c.p_value,
                                       c.runs_baseline, c.runs_candidate, c.enough))
    return VariantComparisons(variants, baseline, rows, read, capped)


def _rank_error(sample) -> float:
    """0 for a group's values themselves; a merged sketch's stated rank error where its items stand for them."""
    return RANK_ERROR if isinstance(sample, Weighted) and not sample.unit else 0.0


def _newest_values(runs, metric: str) -> tuple[dict[tuple, list[float]], int, bool]:
    """({(variant, compute units, load kind): values}, runs read, capped) of at most ``ab_max_runs()`` of the newest
    successful runs having the metric."""
    _, columns, required = AB_METRICS[metric]
    limit = ab_max_runs()
    # The stages summed and the required ones checked in SQL: the cap counts runs that have the metric, and no
    # Python object is made per stage (20,000 runs' tuples took 60 ms to sum).
    timed = runs.filter(status=OK, **{f"{c}__isnull": False for c in required})
    total = sum((or_zero(c) for c in columns[1:]), or_zero(columns[0]))
    values = list(timed.annotate(ab_value=total).order_by("-started_at", "-id")
                  .values_list("variant", "compute_units", "load_kind", "ab_value")[:limit + 1])
    capped = len(values) > limit
    values = values[:limit]
    groups: dict[tuple, list[float]] = {}
    for variant, unit, kind, value in values:
        groups.setdefault((variant, unit, kind), []).append(value)
    return groups, len(values), capped


# --- what to benchmark next (the fleet page) --------------------------------------------------------------------

def runs_that_would_change_answers(table, limit: int = 10) -> list[dict]:
    """From a policy table (policy.evidence.policy_table), the runs that would change a device's answer
    (insights.policy.what_would_change): fewest runs first, then the largest speed-up (a unit whose failures are
    likely real says so in its text). Left out: a gate that allows no failure (no number of runs would do)."""
    out = []
    for entry in table:
        name = device_name(entry)
        for change in entry.policy.changes:
            if change.more_runs is None:
                continue
            out.append({"device": name, "identifier": entry.identifier, "chip": entry.chip,
                        "compute_units": change.compute_units, "runs": change.runs, "failures": change.failures,
                        "more_runs": change.more_runs, "clean": change.clean, "level": change.level,
                        "answer": entry.policy.compute_units, "text": change.text(name, entry.chip),
                        "speedup": change.speedup})
    out.sort(key=lambda r: (r["more_runs"], -(r["speedup"] or 0.0), r["device"]))
    return out[:limit]

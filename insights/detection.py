"""Change detection on a series of runs: slowdowns, crash-rate increases and placement shifts (issue 6).

A series is one (project, model name, device or chip, compute units, metric) with the caller's cohort split already
made: cold, cached and in-memory loads are separate series, and so are OS versions where the data allows, since an
OS update invalidates the on-device compile cache. The input is a list of ``(version, value)`` pairs, one per run,
ordered by version then time; a change can only be attributed to the first run of a version.

At every version boundary the version's runs (current window) are compared with the runs right before it (baseline
window): Mann-Whitney U on the values, and the relative change of the median must reach ``min_effect``.

What we took from Mozilla Perfherder (``treeherder/perfalert``, ``detect_changes``):
  * a back window before the point and a fore window from it, each with a minimum size below which nothing is judged
    (its min_back_window / fore_window; here ``min_runs_per_window``), and a maximum back window (its 24; 48
    here, see ``DetectionSettings``);
  * after a detected change the next baseline starts at that change (its ``last_seen_regression``), so a step is
    not compared against the level it left;
  * a threshold on a test statistic, not on a raw difference.
  Not taken: its Student t on linearly weighted means with threshold 7. Means follow thermal outliers; a rank test
  does not, and with a p-value the threshold means the same for 8 runs or 400. The linear weights (recent runs count
  more) matter little once the baseline restarts after each change.
What we took from asv (``step_detect.py``, ``regressions_thresholds``):
  * levels are medians (asv fits its steps with an L1, median, cost so single outliers cannot make a step);
  * where a step is placed: the split whose two-level median fit has the least absolute error, used when a step
    shows only once the next version's runs confirm it (:func:`_locate`);
  * a change is only reported when its relative size reaches a threshold, 5% by default as in asv.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from .settings import DetectionSettings


@dataclass(frozen=True)
class Comparison:
    """Baseline window against current window. For times ``baseline``/``current`` are medians and ``change`` is
    relative (0.157 = 15.7% slower); for failure rates they are rates and ``change`` is the difference of rates.
    ``enough`` is False when a window had fewer runs than the minimum: then ``significant`` is False too."""

    baseline: float
    current: float
    change: float
    p_value: float
    runs_baseline: int
    runs_current: int
    enough: bool
    significant: bool


@dataclass(frozen=True)
class Change:
    """A detected change at ``version``. ``kind``: slowdown, speedup or crash_rate. ``baseline_runs`` and
    ``current_runs`` index the input list, so the caller can store the runs behind the evidence;
    ``baseline_version`` is the version right before ``version``."""

    kind: str
    version: str
    baseline_version: str
    comparison: Comparison
    baseline_runs: range
    current_runs: range

    @property
    def is_regression(self) -> bool:
        return self.kind != "speedup"

    def to_dict(self) -> dict:
        c = self.comparison
        return {"kind": self.kind, "version": self.version, "baseline_version": self.baseline_version,
                "baseline": c.baseline, "current": c.current, "change": c.change, "p_value": c.p_value,
                "runs": {"baseline": c.runs_baseline, "current": c.runs_current}}


def compare_times(baseline, current, settings: DetectionSettings = DetectionSettings()) -> Comparison:
    """Two-sided Mann-Whitney U plus the minimum relative change of the median.

    Rank-based, so a thermal outlier counts as one rank and not as its size; the same result as a test on log times.
    """
    b = np.asarray(baseline, dtype=float)
    c = np.asarray(current, dtype=float)
    nb, nc = b.size, c.size
    if min(nb, nc) < settings.min_runs_per_window:
        mb = float(np.median(b)) if nb else 0.0
        mc = float(np.median(c)) if nc else 0.0
        return Comparison(mb, mc, 0.0, 1.0, nb, nc, enough=False, significant=False)
    mb, mc = float(np.median(b)), float(np.median(c))
    if mb <= 0:
        return Comparison(mb, mc, 0.0, 1.0, nb, nc, enough=False, significant=False)
    change = mc / mb - 1.0
    p = float(stats.mannwhitneyu(c, b, alternative="two-sided").pvalue)
    significant = p < settings.alpha and abs(change) >= settings.min_effect
    return Comparison(mb, mc, change, p, nb, nc, enough=True, significant=significant)


def compare_failure_rates(baseline_failures: int, baseline_runs: int, current_failures: int, current_runs: int,
                          settings: DetectionSettings = DetectionSettings()) -> Comparison:
    """One-sided Fisher exact test that the current failure rate is higher.

    Fisher rather than a z-test for two proportions because failure counts are small (often 0 against 3), where
    the normal approximation is wrong.
    """
    nb, nc = baseline_runs, current_runs
    rb = baseline_failures / nb if nb else 0.0
    rc = current_failures / nc if nc else 0.0
    if min(nb, nc) < settings.min_runs_per_window:
        return Comparison(rb, rc, rc - rb, 1.0, nb, nc, enough=False, significant=False)
    table = [[current_failures, nc - current_failures], [baseline_failures, nb - baseline_failures]]
    p = float(stats.fisher_exact(table, alternative="greater").pvalue)
    return Comparison(rb, rc, rc - rb, p, nb, nc, enough=True, significant=p < settings.crash_alpha and rc > rb)


def failure_rate_above_allowed(failures: int, runs: int,
                               settings: DetectionSettings = DetectionSettings()) -> Comparison:
    """One-sided binomial test of a failure rate against the allowed rate (``max_failure_rate``): is this unit
    failing, whatever its history? For pages that flag units that crash from their first version, which the change
    detector by design does not report."""
    allowed = settings.max_failure_rate
    rate = failures / runs if runs else 0.0
    if runs < settings.min_runs_per_window:
        return Comparison(allowed, rate, rate - allowed, 1.0, 0, runs, enough=False, significant=False)
    p = float(stats.binomtest(failures, runs, allowed, alternative="greater").pvalue)
    return Comparison(allowed, rate, rate - allowed, p, 0, runs, enough=True,
                      significant=p < settings.crash_alpha and rate > allowed)


def _too_small(baseline: np.ndarray, current: np.ndarray, settings: DetectionSettings) -> bool:
    mb = np.median(baseline)
    return mb <= 0 or abs(np.median(current) / mb - 1.0) < settings.min_effect


def version_groups(versions: Sequence[str]) -> list[tuple[str, range]]:
    """Consecutive runs of each version as (version, index range); a version may not come back later."""
    groups: list[tuple[str, range]] = []
    start = 0
    for i in range(1, len(versions) + 1):
        if i == len(versions) or versions[i] != versions[start]:
            if any(v == versions[start] for v, _ in groups):
                raise ValueError(f"runs of version {versions[start]!r} are not contiguous: order by version")
            groups.append((versions[start], range(start, i)))
            start = i
    return groups


def _baseline_range(start: int, floor: int, longest: int) -> range:
    return range(max(floor, start - longest), start)


def detect_slowdowns(points: Sequence[tuple[str, float]],
                     settings: DetectionSettings = DetectionSettings()) -> list[Change]:
    """Every significant change of a timing (or memory) series, oldest first, as slowdowns and speedups.

    Speedups are returned too because they restart the baseline just like slowdowns; alerts are raised for
    ``is_regression`` ones. A step too small to show in its first version's runs is often confirmed by the next
    version's; it is then placed where a two-level fit splits best (:func:`_locate`), so the alert names the version
    that changed, not the one that confirmed it.
    """
    versions = [v for v, _ in points]
    values = np.asarray([x for _, x in points], dtype=float)
    groups = version_groups(versions)
    changes, floor = [], 0
    for index, (version, current) in enumerate(groups):
        if index == 0:
            continue
        base = _baseline_range(current.start, floor, settings.max_baseline_runs)
        b, c = values[base.start:base.stop], values[current.start:current.stop]
        if min(b.size, c.size) < settings.min_runs_per_window or _too_small(b, c, settings):
            continue  # cannot be significant: spare the rank test, the bulk of a check's time
        result = compare_times(b, c, settings)
        if result.significant:
            change = _locate(values, groups, index, floor, result, settings)
            changes.append(change)
            floor = change.current_runs.start
    return changes


def _locate(values: np.ndarray, groups, index: int, floor: int, found: Comparison,
            settings: DetectionSettings) -> Change:
    """Where in the found comparison's runs the step most likely began.

    As asv does, the split is the one whose two-level median fit has the least absolute error (on log values) over
    one fixed stretch of runs: from the found baseline's start to the current version's end. Candidates are the
    version starts in that stretch leaving at least ``min_runs_per_window`` runs on each side; the chosen split must
    still pass :func:`compare_times`, else the version that showed the change keeps it.
    """
    current = groups[index][1]
    stop = current.stop
    segment_start = max(floor, current.start - settings.max_baseline_runs)
    logs = np.log(np.clip(values[segment_start:stop], 1e-12, None))

    def cost(split: int) -> float:
        left, right = logs[:split - segment_start], logs[split - segment_start:]
        return float(np.abs(left - np.median(left)).sum() + np.abs(right - np.median(right)).sum())

    best_index, best_cost, best = index, cost(current.start), found
    for candidate in range(index - 1, 0, -1):
        start = groups[candidate][1].start
        if start - segment_start < settings.min_runs_per_window:
            break
        if (c := cost(start)) < best_cost:
            base = _baseline_range(start, floor, settings.max_baseline_runs)
            result = compare_times(values[base.start:base.stop], values[start:stop], settings)
            if result.significant and (result.change > 0) == (found.change > 0):
                best_index, best_cost, best = candidate, c, result
    start = groups[best_index][1].start
    base = _baseline_range(start, floor, settings.max_baseline_runs)
    kind = "slowdown" if best.change > 0 else "speedup"
    return Change(kind, groups[best_index][0], groups[best_index - 1][0], best, base, range(start, stop))


def detect_crash_rate_increases(points: Sequence[tuple[str, bool]],
                                settings: DetectionSettings = DetectionSettings()) -> list[Change]:
    """Versions whose failure rate (crash, oom, error, timeout: ``True`` = failed) rose significantly over the runs
    before them.

    Only changes: a unit that fails as often from its first version as later is not a regression, and the policy
    already keeps it out (its observed failure rate is above the gate). :func:`failure_rate_above_allowed` tells
    such a unit apart when a page wants to flag it.
    """
    versions = [v for v, _ in points]
    failed = np.asarray([bool(f) for _, f in points], dtype=bool)
    groups = version_groups(versions)
    changes, floor = [], 0
    for index, (version, current) in enumerate(groups):
        if index == 0:
            continue
        base = _baseline_range(current.start, floor, settings.max_failure_baseline_runs)
        result = compare_failure_rates(int(failed[base.start:base.stop].sum()), len(base),
                                       int(failed[current.start:current.stop].sum()), len(current), settings)
        if result.significant:
            changes.append(Change("crash_rate", version, groups[index - 1][0], result, base, current))
            floor = current.start
    return changes


@dataclass(frozen=True)
class PlacementShift:
    """How a compute plan's Neural Engine placement moved between a baseline and a new plan.

    Shares are of ops and of estimated cost placed on ``neural_engine``; the cost shares are None when a plan lacks
    estimated costs. ``ops_left_neural_engine`` are ops present in both plans, on the Neural Engine before and
    elsewhere now (renamed ops cannot be matched; the shares still show their move).
    """

    ops_left_neural_engine: list[str]
    ops_share_baseline: float
    ops_share_current: float
    cost_share_baseline: float | None
    cost_share_current: float | None
    is_regression: bool

    @property
    def ops_share_drop(self) -> float:
        return self.ops_share_baseline - self.ops_share_current

    @property
    def cost_share_drop(self) -> float | None:
        if self.cost_share_baseline is None or self.cost_share_current is None:
            return None
        return self.cost_share_baseline - self.cost_share_current


def _neural_engine_shares(plan: Sequence[Mapping]) -> tuple[float, float | None]:
    if not plan:
        return 0.0, None
    on_ne = [op.get("device") == "neural_engine" for op in plan]
    ops_share = sum(on_ne) / len(plan)
    costs = [op.get("estimated_cost") for op in plan]
    if any(c is None for c in costs) or sum(costs) <= 0:
        return ops_share, None
    return ops_share, sum(c for c, ne in zip(costs, on_ne) if ne) / sum(costs)


def placement_shift(baseline_plan: Sequence[Mapping], current_plan: Sequence[Mapping],
                    settings: DetectionSettings = DetectionSettings()) -> PlacementShift:
    """Compare two compute plans (lists of ``{"op", "device", "estimated_cost"}`` as uploaded).

    A regression when the Neural Engine's share of ops or of estimated cost fell by more than
    ``min_placement_share_drop``: how a toolchain or OS update silently sends ops to the CPU.
    """
    before = {op["op"]: op.get("device") for op in baseline_plan}
    after = {op["op"]: op.get("device") for op in current_plan}
    left = [name for name, device in before.items()
            if device == "neural_engine" and name in after and after[name] != "neural_engine"]
    ops_b, cost_b = _neural_engine_shares(baseline_plan)
    ops_c, cost_c = _neural_engine_shares(current_plan)
    drops = [ops_b - ops_c] + ([cost_b - cost_c] if cost_b is not None and cost_c is not None else [])
    is_regression = bool(current_plan) and max(drops) > settings.min_placement_share_drop
    return PlacementShift(left, ops_b, ops_c, cost_b, cost_c, is_regression)

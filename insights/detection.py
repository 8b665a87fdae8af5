"""Change detection on a series of runs: slowdowns, crash-rate increases and placement shifts (issue 6).

A series is one (project, model name, device or chip, compute units, metric) with the caller's cohort split already
made: cold, cached and in-memory loads are separate series, and so are OS versions where the data allows, since an
OS update invalidates the on-device compile cache. The input is a list of ``(version, value)`` pairs, one per run,
ordered by version then time; a change can only be attributed to the first run of a version.

How (:func:`_segment`): binary segmentation over version boundaries. In a stretch of the series the best split is
the version boundary whose two-level fit has the least cost; the runs before it (baseline window) and from it on
(current window) are then tested, Mann-Whitney U on times and Fisher's exact test on failures, with a minimum
relative change of the median (``min_effect``). A significant split is a change; the stretches on both sides are
searched again, so each change is tested against the level right before it.

What we took from Mozilla Perfherder (``treeherder/perfalert``, ``detect_changes``):
  * a back window before the point and a fore window from it, each with a minimum size below which nothing is judged
    (its min_back_window / fore_window; here ``min_runs_per_window``) and a maximum (``max_baseline_runs``,
    ``max_current_runs``);
  * the fore window reaches over the following pushes (here: versions): a step too small to show in one version's
    runs is confirmed by the next version's, and is still reported at the version where it began;
  * after a change the next baseline starts at that change (its ``last_seen_regression``);
  * a threshold on a test statistic, not on a raw difference.
  Not taken: its Student t on linearly weighted means with threshold 7. Means follow thermal outliers; a rank test
  does not, and with a p-value the threshold means the same for 8 runs or 400.
What we took from asv (``step_detect.py``):
  * steps are placed by fitting levels with a robust cost, not by the test statistic (a test statistic grows with
    the window sizes and would pull a step towards the split with the most runs). asv fits medians (L1 cost); we use
    Tukey's biweight cost with one scale for the stretch. Thermal outliers are only ever slower, and under any
    cost that keeps growing with the distance (L1, Huber) a few hot runs just before a step pull it one version
    early; the biweight cost stops growing, so they pull nothing (benchmarks/detection.py, p < 0.005 and a margin
    of 1.0 over the next best split: recall at 10% steps 0.943 with Huber, 0.952 with biweight; false alerts 116
    and 89);
  * a change is only reported when its relative size reaches a threshold, 5% by default as in asv.
Our own addition: a change is reported only when the data place it, i.e. its split fits better than all other
splits together by ``location_margin`` (log-odds); else it splits the series but raises no alert. An alert names a
version, and a step the data place about as well one version off would send a team to the wrong change.
"""

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

import numpy as np
from scipy import special, stats

from .settings import DetectionSettings
from .weighted import Weighted

W = TypeVar("W")  # the windows of a split
R = TypeVar("R")  # the result of its test


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
    ``current_runs`` index the input list, so the caller can store the runs behind the evidence; the current runs
    start at ``version`` and may reach into later versions (up to the next change). ``baseline_version`` is the
    version right before ``version``. ``located`` is False for a step the data cannot place at one version: it
    restarts the baseline but is not a regression to alert on."""

    kind: str
    version: str
    baseline_version: str
    comparison: Comparison
    baseline_runs: range
    current_runs: range
    located: bool = True

    @property
    def is_regression(self) -> bool:
        return self.kind != "speedup" and self.located

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
        mb = _median(b) if nb else 0.0
        mc = _median(c) if nc else 0.0
        return Comparison(mb, mc, 0.0, 1.0, nb, nc, enough=False, significant=False)
    mb, mc = _median(b), _median(c)
    if mb <= 0:
        return Comparison(mb, mc, 0.0, 1.0, nb, nc, enough=False, significant=False)
    change = mc / mb - 1.0
    p = mann_whitney_p(c, b)
    significant = p < settings.alpha and abs(change) >= settings.min_effect
    return Comparison(mb, mc, change, p, nb, nc, enough=True, significant=significant)


def mann_whitney_p(x: np.ndarray, y: np.ndarray) -> float:
    """Two-sided p-value of the Mann-Whitney U test: the normal approximation with tie and continuity correction,
    exactly what ``scipy.stats.mannwhitneyu`` computes for windows of 8 or more runs (a test checks that). Written
    out because scipy's array-API wrapper costs ~3 ms a call, ten times the arithmetic, and a check makes thousands.
    """
    shift, variance = _u_statistic(x, y)
    if variance <= 0:
        return 1.0
    z = (abs(shift) - 0.5) / math.sqrt(variance)
    return float(min(1.0, 2 * _normal_sf(max(z, 0.0))))


def mann_whitney_one_sided_p(x: np.ndarray, y: np.ndarray, alternative: str) -> float:
    """``scipy.stats.mannwhitneyu(x, y, alternative=...).pvalue`` ("greater": x tends to be larger; "less"), by
    the same normal approximation, for samples of more than 8 values each (where scipy uses it too; smaller ones
    go to scipy, which may compute the exact distribution)."""
    greater, less = mann_whitney_one_sided_ps(x, y)
    return greater if alternative == "greater" else less


def mann_whitney_one_sided_ps(x, y) -> tuple[float, float]:
    """(:func:`mann_whitney_one_sided_p` "greater", and "less") from one ranking of the samples; either may be a
    :class:`Weighted` sample (a merged sketch's items), tested as the sample it stands for."""
    if isinstance(x, Weighted) or isinstance(y, Weighted):
        x, y = Weighted.of(x), Weighted.of(y)
        if x.unit and y.unit:
            x, y = x.values, y.values
    if len(x) <= 8 or len(y) <= 8:
        x, y = (s.expanded() if isinstance(s, Weighted) else s for s in (x, y))
        return tuple(float(stats.mannwhitneyu(x, y, alternative=a).pvalue) for a in ("greater", "less"))
    shift, variance = weighted_u_statistic(x, y) if isinstance(x, Weighted) else _u_statistic(x, y)
    if variance <= 0:
        return 1.0, 1.0
    return tuple(float(min(1.0, max(0.0, _normal_sf((s - 0.5) / math.sqrt(variance))))) for s in (shift, -shift))


def _normal_sf(z: float) -> float:
    """``stats.norm.sf(z)``, which is ``special.ndtr(-z)``, without the distribution object's ~0.5 ms a call."""
    return float(special.ndtr(-z))


def _u_statistic(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Mann-Whitney U of ``x`` minus its mean under no shift, and its tie-corrected variance."""
    n1, n2 = x.size, y.size
    ranks, ties = _average_ranks(np.concatenate([x, y]))
    return _centred_u(float(ranks[:n1].sum()), n1, n2, ties)


def weighted_u_statistic(x: Weighted, y: Weighted) -> tuple[float, float]:
    """:func:`_u_statistic` of the two expanded samples, from their values and weights: each group of equal values
    (of either sample) shares the average of the ranks its weight spans."""
    values = np.concatenate([x.values, y.values])
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
    weights = np.concatenate([x.weights, y.weights]).astype(float)[order]
    ties = np.add.reduceat(weights, starts)
    of_x = np.add.reduceat(np.where(order < x.values.size, weights, 0.0), starts)
    average_rank = np.cumsum(ties) - (ties - 1) / 2  # a group's ranks run from the weight before it + 1
    return _centred_u(float(of_x @ average_rank), x.n, y.n, ties)


def _centred_u(rank_sum: float, n1: int, n2: int, ties: np.ndarray) -> tuple[float, float]:
    """From x's rank sum among the n1 + n2 values and the sizes of the groups of equal values: U of x minus its mean
    under no shift, and its tie-corrected variance. (Products, not a power: numpy's float power took 12 of the 89 µs
    of a weighted test of 300 + 300 items, which a device-rows overview runs ~150 times a request; 51 µs now.)"""
    n = n1 + n2
    ties = ties.astype(float)
    tie_term = float(ties @ (ties * ties - 1)) / (n * (n - 1))
    return rank_sum - n1 * (n1 + 1) / 2 - n1 * n2 / 2, n1 * n2 / 12 * ((n + 1) - tie_term)


def _average_ranks(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(``stats.rankdata(values)``: 1-based ranks, ties given their average; the size of each group of equal
    values, in value order). scipy's own algorithm, without its wrapper's overhead (most of a check's test time)."""
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    starts = np.concatenate(([True], ordered[1:] != ordered[:-1]))
    dense = np.empty(values.size, dtype=np.intp)
    dense[order] = np.cumsum(starts)
    bounds = np.concatenate((np.flatnonzero(starts), [values.size]))
    return 0.5 * (bounds[dense] + bounds[dense - 1] + 1), np.diff(bounds)


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
    rose = rc > rb and rc >= settings.min_failure_rate_ratio * rb
    return Comparison(rb, rc, rc - rb, p, nb, nc, enough=True, significant=p < settings.crash_alpha and rose)


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


@dataclass(frozen=True)
class _Split:
    index: int  # the group where the new level starts
    comparison: Comparison
    baseline_runs: range
    current_runs: range
    margin: float  # log-odds of this split against all others of its stretch (_log_odds); inf if it was the only one


def _binary_segmentation(n: int, windows: Callable[[int, int, int], W | None], cost: Callable[[int, int, int], float],
                         test: Callable[[W], R | None]) -> list[tuple[int, W, R, float]]:
    """The segmentation loop over ``n`` version groups (see the module docstring), oldest change first.

    ``windows(lo, k, hi)``: for a split at group ``k`` of the stretch [lo, hi), its windows, or None when they are
    too small to judge; ``cost(lo, k, hi)``: its two-level cost. ``test(windows)``: the result of the best split's
    test, or None when it is not significant. Returns (k, windows, result, margin) per change, the margin being the
    log-odds of the split against all other candidates of its stretch (:func:`_log_odds`).

    A stretch where no split passes its test is left before any cost is computed: the best split's test would fail
    too. Most stretches have no change, and a cost reads every run of the stretch while a test reads its two
    windows (at most ``max_baseline_runs + max_current_runs`` runs), so a long series costs what its tests cost.
    """
    found = []
    stack = [(0, n)]
    while stack:
        lo, hi = stack.pop()
        splits = [(k, w) for k in range(lo + 1, hi) if (w := windows(lo, k, hi)) is not None]
        tested = {}
        for k, w in splits:
            tested[k] = test(w)
            if tested[k] is not None:
                break
        else:
            continue
        candidates = sorted(((cost(lo, k, hi), k, w) for k, w in splits), key=lambda c: c[0])
        best_cost, k, w = candidates[0]
        result = tested[k] if k in tested else test(w)
        if result is None:
            continue
        found.append((k, w, result, _log_odds(best_cost, [c[0] for c in candidates[1:]])))
        stack += [(lo, k), (k, hi)]
    return sorted(found, key=lambda f: f[0])


def _segment(groups: list[tuple[str, range]], cost: Callable[[int, int, int], float],
             compare: Callable[[range, range], Comparison | None], max_back: int, max_fore: int,
             min_runs: int) -> list[_Split]:
    """Binary segmentation of the runs of one series' ``groups``, oldest change first.

    ``cost(start, split, stop)``: cost of fitting one level to runs [start, split) and one to [split, stop).
    ``compare(baseline, current)``: the test of a split on its windows, at most ``max_back`` runs before it and
    ``max_fore`` runs from it, both inside the stretch; None when cheaper arithmetic already shows it cannot be
    significant (the test itself is then not run).
    """
    def windows(lo: int, index: int, hi: int) -> tuple[range, range] | None:
        start, stop, split = groups[lo][1].start, groups[hi - 1][1].stop, groups[index][1].start
        base, current = range(max(start, split - max_back), split), range(split, min(stop, split + max_fore))
        if min(len(base), len(current)) < min_runs:
            return None
        return base, current

    def split_cost(lo: int, index: int, hi: int) -> float:
        return cost(groups[lo][1].start, groups[index][1].start, groups[hi - 1][1].stop)

    def test(windows: tuple[range, range]) -> Comparison | None:
        result = compare(*windows)
        return result if result is not None and result.significant else None

    return [_Split(index, result, base, current, margin) for index, (base, current), result, margin
            in _binary_segmentation(len(groups), windows, split_cost, test)]


def _log_odds(best: float, others: Sequence[float]) -> float:
    """Log-odds of the best split against all other splits together, costs read as negative log-likelihoods:
    -log(sum(exp(best - other))); inf when it was the only one."""
    if not others:
        return math.inf
    exponents = [best - other for other in others]
    top = max(exponents)  # factored out: a large step puts the others thousands of units away, exp() underflows
    return -(top + math.log(sum(math.exp(e - top) for e in exponents)))


def _median(x: np.ndarray) -> float:
    """np.median without its overhead, which dominates on the short arrays fitted here."""
    s = np.sort(x)
    m = s.size // 2
    return float(s[m]) if s.size % 2 else float((s[m - 1] + s[m]) / 2)


_BIWEIGHT_C = 4.685  # Tukey's usual tuning: 95% efficiency on Gaussian noise


def _biweight_cost(logs: np.ndarray, scale: float) -> float:
    """Tukey's biweight cost of one level fitted to ``logs`` (an M-estimate from the median, a few reweighting
    steps). The cost of a run stops growing beyond ``_BIWEIGHT_C`` scales: thermal outliers are only ever slower, and
    under Huber's linear tail each one in the version before a step pulled the split one version early."""
    c = _BIWEIGHT_C * scale
    level = _median(logs)
    u, weights = np.empty_like(logs), np.empty_like(logs)  # in place: the same arithmetic without temporaries
    for _ in range(5):
        np.subtract(logs, level, out=u)
        u /= c
        np.multiply(u, u, out=weights)
        np.subtract(1.0, weights, out=weights)
        weights *= weights  # (1 - u²)², 0 from |u| = 1 on
        weights[~(np.abs(u, out=u) < 1.0)] = 0.0
        total = weights.sum()
        if total <= 0:
            break
        level = float(np.multiply(weights, logs, out=weights).sum() / total)
    u = np.minimum(np.abs(logs - level) / c, 1.0)
    return float((_BIWEIGHT_C ** 2 / 6 * (1.0 - (1.0 - u * u) ** 3)).sum())


# 1 / Phi^-1(3/4): the MAD of normal noise times this is its sigma (scipy's median_abs_deviation(scale="normal")).
_MAD_TO_SIGMA = float(1.0 / stats.norm.ppf(0.75))


def _noise_scale(logs: np.ndarray, ranges: Sequence[range]) -> float:
    """The noise scale of a stretch: the MAD, as a normal's sigma, of each run's log time around its own version's
    median, so a step between versions does not inflate it.

    It is ``scipy.stats.median_abs_deviation(residuals, scale="normal")``: pooled, the residuals have median 0 (each
    version has as many runs below its median as above), so the MAD about their median is the median of their sizes
    (tests/insights/test_noise_scale.py checks the two agree). Written out because scipy's wrapper costs ~0.1 ms a
    call, more than the arithmetic, and a check computes it for every stretch of every series: with it,
    benchmarks/fleet_detection.py's find_regressions took 4.8 s a fleet instead of 2.4 s.
    """
    residuals = [logs[r.start:r.stop] - _median(logs[r.start:r.stop]) for r in ranges]
    if not any(len(r) for r in residuals):
        return 1e-6
    return max(_MAD_TO_SIGMA * _median(np.abs(np.concatenate(residuals))), 1e-6)


def _time_cost(logs: np.ndarray, groups: list[tuple[str, range]]) -> Callable[[int, int, int], float]:
    """Biweight cost of a two-level fit, with one noise scale per stretch: the MAD of the runs around their own
    version's median (a step between versions does not inflate it)."""
    scales: dict[tuple[int, int], float] = {}

    def scale(start: int, stop: int) -> float:
        if (start, stop) not in scales:
            scales[(start, stop)] = _noise_scale(logs, [r for _, r in groups if start <= r.start and r.stop <= stop])
        return scales[(start, stop)]

    def cost(start: int, split: int, stop: int) -> float:
        s = scale(start, stop)
        return _biweight_cost(logs[start:split], s) + _biweight_cost(logs[split:stop], s)

    return cost


def detect_slowdowns(points: Sequence[tuple[str, float]],
                     settings: DetectionSettings = DetectionSettings()) -> list[Change]:
    """Every significant change of a timing (or memory) series, oldest first, as slowdowns and speedups.

    Speedups are returned too because they restart the baseline just like slowdowns; alerts are raised for
    ``is_regression`` ones (slowdowns the data place at one version).
    """
    return detect_slowdowns_in(version_groups([v for v, _ in points]), np.asarray([x for _, x in points], dtype=float),
                               settings)


def detect_slowdowns_in(groups: list[tuple[str, range]], values: np.ndarray,
                        settings: DetectionSettings = DetectionSettings()) -> list[Change]:
    """:func:`detect_slowdowns` of a series given as its version groups and its values (float64, in order)."""
    logs = np.log(np.clip(values, 1e-12, None))

    def compare(base: range, current: range) -> Comparison | None:
        b, c = values[base.start:base.stop], values[current.start:current.stop]
        # compare_times' min_effect from the medians alone: most splits fail it, and the rank test is the cost
        mb = _median(b)
        if mb <= 0 or abs(_median(c) / mb - 1.0) < settings.min_effect:
            return None
        return compare_times(b, c, settings)

    changes = []
    for s in _segment(groups, _time_cost(logs, groups), compare, settings.max_baseline_runs,
                      settings.max_current_runs, settings.min_runs_per_window):
        located = s.margin >= settings.location_margin
        kind = "slowdown" if s.comparison.change > 0 else "speedup"
        changes.append(Change(kind, groups[s.index][0], groups[s.index - 1][0], s.comparison, s.baseline_runs,
                              s.current_runs, located))
    return changes


def _bernoulli_cost(failed: np.ndarray) -> Callable[[int, int, int], float]:
    """Negative log-likelihood of one failure rate before the split and one after."""
    cumulative = np.concatenate([[0], np.cumsum(failed)])

    def nll(start: int, stop: int) -> float:
        n, k = stop - start, int(cumulative[stop] - cumulative[start])
        return -sum(c * math.log(c / n) for c in (k, n - k) if c)

    return lambda start, split, stop: nll(start, split) + nll(split, stop)


def detect_crash_rate_increases(points: Sequence[tuple[str, bool]],
                                settings: DetectionSettings = DetectionSettings()) -> list[Change]:
    """Versions whose failure rate (crash, oom, error, timeout: ``True`` = failed) rose significantly over the runs
    before them, placed by the same segmentation as timings (a rise first confirmed by the next version is reported
    where it began). A significant fall splits the series too, so a fixed crash starts a new baseline.

    Only changes: a unit that fails as often from its first version as later is not a regression, and the policy
    already keeps it out (its observed failure rate is above the gate).
    """
    return detect_crash_rate_increases_in(version_groups([v for v, _ in points]),
                                          np.asarray([bool(f) for _, f in points], dtype=bool), settings)


def detect_crash_rate_increases_in(groups: list[tuple[str, range]], failed: np.ndarray,
                                   settings: DetectionSettings = DetectionSettings()) -> list[Change]:
    """:func:`detect_crash_rate_increases` of a series given as its version groups and failures (bool, in order)."""
    def compare(base: range, current: range) -> Comparison | None:
        fb, fc = int(failed[base.start:base.stop].sum()), int(failed[current.start:current.stop].sum())
        rb, rc, ratio = fb / len(base), fc / len(current), settings.min_failure_rate_ratio
        # compare_failure_rates' ratio gate, either way, before Fisher's test (the cost): most splits fail it
        if not (rc > rb and rc >= ratio * rb or rb > rc and rb >= ratio * rc):
            return None
        rise = compare_failure_rates(fb, len(base), fc, len(current), settings)
        if rise.change >= 0:
            return rise
        fall = compare_failure_rates(fc, len(current), fb, len(base), settings)  # splits the series, no alert
        return replace(rise, p_value=fall.p_value, significant=fall.significant)

    changes = []
    for s in _segment(groups, _bernoulli_cost(failed), compare, settings.max_failure_baseline_runs,
                      settings.max_failure_baseline_runs, settings.min_runs_per_window):
        if s.comparison.change > 0:
            changes.append(Change("crash_rate", groups[s.index][0], groups[s.index - 1][0], s.comparison,
                                  s.baseline_runs, s.current_runs))
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


@dataclass(frozen=True)
class SharedChange:
    """A step several strata (the compute units of one chip) take at the same version, found on all of them
    together. ``windows`` maps each stratum to its (baseline runs, current runs), indexes into its own points."""

    kind: str
    version: str
    baseline_version: str
    change: float
    p_value: float
    windows: dict[str, tuple[range, range]]
    located: bool = True

    @property
    def is_regression(self) -> bool:
        return self.kind == "slowdown" and self.located


def stratified_mann_whitney_p(pairs: Sequence[tuple[np.ndarray, np.ndarray]]) -> float:
    """Two-sided van Elteren test: Mann-Whitney U within each (current, baseline) stratum, summed with weights
    1/(n + 1), so a shift shared by the strata adds up while their different levels never meet in one ranking."""
    numerator = variance = 0.0
    for x, y in pairs:
        shift, var = _u_statistic(x, y)
        w = 1.0 / (x.size + y.size + 1)
        numerator += w * shift
        variance += w * w * var
    if variance <= 0:
        return 1.0
    return float(min(1.0, 2 * _normal_sf(abs(numerator) / math.sqrt(variance))))


def detect_shared_slowdowns(strata: Mapping[str, Sequence[tuple[str, float]]], versions: Sequence[str],
                            settings: DetectionSettings = DetectionSettings()) -> list[SharedChange]:
    """Binary segmentation (as :func:`detect_slowdowns`) of several strata at once, oldest change first.

    Each stratum keeps its own level and noise scale; a split at a version costs the sum of the strata's two-level
    biweight fits, and is tested with the van Elteren test on each stratum's back and fore windows. The change is
    the strata's median changes weighted by their sizes. A model version that slows every compute unit of a chip
    shows here with all their runs, where each unit alone may have too few (cold loads are a sixth of the runs).
    ``versions``: every version in order; each stratum's points are ordered by it.
    """
    return detect_shared_slowdowns_in(
        {name: (version_groups([v for v, _ in points]), np.asarray([x for _, x in points], dtype=float))
         for name, points in strata.items()}, versions, settings)


def detect_shared_slowdowns_in(strata: Mapping[str, tuple[list[tuple[str, range]], np.ndarray]],
                               versions: Sequence[str],
                               settings: DetectionSettings = DetectionSettings()) -> list[SharedChange]:
    """:func:`detect_shared_slowdowns` of strata given as (version groups, values in order)."""
    data = {}
    for name, (version_ranges, values) in strata.items():
        logs = np.log(np.clip(values, 1e-12, None))
        groups = dict(version_ranges)
        data[name] = (values, logs, groups, _noise_scale(logs, list(groups.values())))

    spans: dict[tuple, range] = {}

    def span(name: str, lo: int, hi: int) -> range:
        """The runs of one stratum in versions[lo:hi] (they are contiguous)."""
        if (name, lo, hi) not in spans:
            ranges = [data[name][2][v] for v in versions[lo:hi] if v in data[name][2]]
            spans[(name, lo, hi)] = range(ranges[0].start, ranges[-1].stop) if ranges else range(0)
        return spans[(name, lo, hi)]

    def windows(lo: int, k: int, hi: int) -> dict[str, tuple[range, range]]:
        out = {}
        for name in data:
            before, after = span(name, lo, k), span(name, k, hi)
            if len(before) and len(after):
                out[name] = (range(max(before.start, before.stop - settings.max_baseline_runs), before.stop),
                             range(after.start, min(after.stop, after.start + settings.max_current_runs)))
        return out

    def cost(lo: int, k: int, hi: int) -> float:
        total = 0.0
        for name, (_, logs, _, scale) in data.items():
            for r in (span(name, lo, k), span(name, k, hi)):
                if len(r):
                    total += _biweight_cost(logs[r.start:r.stop], scale)
        return total

    def candidate(lo: int, k: int, hi: int) -> dict[str, tuple[range, range]] | None:
        w = windows(lo, k, hi)
        if not w or min(sum(len(b) for b, _ in w.values()),
                        sum(len(c) for _, c in w.values())) < settings.min_runs_per_window:
            return None
        return w

    def test(w: dict[str, tuple[range, range]]) -> tuple[float, float] | None:
        pairs = [(data[n][0][c.start:c.stop], data[n][0][b.start:b.stop]) for n, (b, c) in w.items()]
        p = stratified_mann_whitney_p(pairs)
        weights = [len(c) * len(b) / (len(c) + len(b)) for c, b in pairs]
        shift = sum(wt * (math.log(_median(c)) - math.log(_median(b))) for wt, (c, b) in zip(weights, pairs))
        change = math.exp(shift / sum(weights)) - 1.0
        return (p, change) if p < settings.alpha and abs(change) >= settings.min_effect else None

    return [SharedChange("slowdown" if change > 0 else "speedup", versions[k], versions[k - 1], change, p, w,
                         margin >= settings.location_margin)
            for k, w, (p, change), margin in _binary_segmentation(len(versions), candidate, cost, test)]

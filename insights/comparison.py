"""A/B comparison of two ``variant``s (loading or warm-up strategies) of the same model, device and unit (issue 4).

Answers "does a dummy warm-up prediction, or keeping the model in memory, help?" with the median difference, its
seeded bootstrap interval and a Mann-Whitney p-value: medians and ranks because load and first-prediction times are
skewed and carry thermal outliers.
"""

import math
from dataclasses import dataclass, replace

from scipy import special, stats

from .detection import weighted_u_statistic
from .intervals import Interval, bootstrap_median_difference
from .settings import ComparisonSettings
from .weighted import Weighted


@dataclass(frozen=True)
class VariantComparison:
    """``difference`` is median(candidate) - median(baseline) in ms (negative: the candidate is faster), with its
    interval; ``relative`` is that difference over the baseline median. ``enough`` is False when either variant has
    fewer than ``min_runs`` runs: the numbers are shown but should not be acted on."""

    baseline_median: float
    candidate_median: float
    difference: Interval
    relative: float
    p_value: float
    runs_baseline: int
    runs_candidate: int
    enough: bool

    def to_dict(self) -> dict:
        return {"baseline_median": self.baseline_median, "candidate_median": self.candidate_median,
                "difference": self.difference.estimate, "difference_low": self.difference.low,
                "difference_high": self.difference.high, "confidence": self.difference.confidence,
                "relative": self.relative, "p_value": self.p_value,
                "runs": {"baseline": self.runs_baseline, "candidate": self.runs_candidate}, "enough": self.enough}


def compare_variants(baseline, candidate, settings: ComparisonSettings = ComparisonSettings(),
                     rank_errors: tuple[float, float] = (0.0, 0.0)) -> VariantComparison:
    """Compare the times of two variants (e.g. first-prediction ms without and with a warm-up).

    Either side may be a weighted sample (``insights.weighted``: a merged sketch's items, each standing for several
    values), whose values are each within its ``rank_errors`` entry (baseline's, candidate's: a fraction of its
    values; 0 for the values themselves) of their true ranks. That error is accounted for, not hidden: the interval
    is widened on each side by as much as it can move either median (to the values at ranks 1/2 -+ the error), and
    the p-value is that of the U statistic moved toward no difference by as much as it can move U, (e_a + e_b) n_a
    n_b (each side's distribution function is off by at most its error, and U / (n_a n_b) by at most their sum)."""
    a, b = Weighted.of(baseline), Weighted.of(candidate)
    if a.n == 0 or b.n == 0:
        raise ValueError("compare_variants needs runs of both variants")
    diff = bootstrap_median_difference(a, b, settings.confidence, settings.n_resamples, settings.seed)
    ma, mb = a.median(), b.median()
    error_a, error_b = rank_errors
    if a.unit and b.unit and not (error_a or error_b):
        p = float(stats.mannwhitneyu(b.values, a.values, alternative="two-sided").pvalue)
    else:
        diff = replace(diff, low=diff.low - (mb - b.at_rank(0.5 - error_b)) - (a.at_rank(0.5 + error_a) - ma),
                       high=diff.high + (b.at_rank(0.5 + error_b) - mb) + (ma - a.at_rank(0.5 - error_a)))
        p = _two_sided_p(b, a, (error_a + error_b) * a.n * b.n)
    enough = min(a.n, b.n) >= settings.min_runs and diff.enough
    return VariantComparison(ma, mb, diff, (mb - ma) / ma if ma > 0 else 0.0, p, a.n, b.n, enough)


def _two_sided_p(x: Weighted, y: Weighted, slack: float) -> float:
    """The two-sided Mann-Whitney p-value of x against y (normal approximation, tie and continuity corrected, as
    scipy's) with U moved ``slack`` toward its mean under no difference."""
    shift, variance = weighted_u_statistic(x, y)
    if variance <= 0:
        return 1.0
    z = (max(abs(shift) - slack, 0.0) - 0.5) / math.sqrt(variance)
    return float(min(1.0, 2 * special.ndtr(-max(z, 0.0))))

"""A/B comparison of two ``variant``s (loading or warm-up strategies) of the same model, device and unit (issue 4).

Answers "does a dummy warm-up prediction, or keeping the model in memory, help?" with the median difference, its
seeded bootstrap interval and a Mann-Whitney p-value: medians and ranks because load and first-prediction times are
skewed and carry thermal outliers.
"""

from dataclasses import dataclass

import numpy as np
from scipy import stats

from .intervals import Interval, bootstrap_median_difference
from .settings import ComparisonSettings


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


def compare_variants(baseline, candidate, settings: ComparisonSettings = ComparisonSettings()) -> VariantComparison:
    """Compare the times of two variants (e.g. first-prediction ms without and with a warm-up)."""
    a = np.asarray(baseline, dtype=float)
    b = np.asarray(candidate, dtype=float)
    if a.size == 0 or b.size == 0:
        raise ValueError("compare_variants needs runs of both variants")
    diff = bootstrap_median_difference(a, b, settings.confidence, settings.n_resamples, settings.seed)
    ma, mb = float(np.median(a)), float(np.median(b))
    p = float(stats.mannwhitneyu(b, a, alternative="two-sided").pvalue)
    enough = min(a.size, b.size) >= settings.min_runs and diff.enough
    return VariantComparison(ma, mb, diff, (mb - ma) / ma if ma > 0 else 0.0, p, a.size, b.size, enough)

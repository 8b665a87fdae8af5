"""Turn stored runs of one compute unit into the :class:`~insights.policy.UnitEvidence` the policy reads.

Kept here, not in a view, so the medians behind a policy are computed one way: timings from successful runs only
(a failed run's partial timings describe the failure, not the unit), failures counted by status.
"""

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from statistics import median

from .policy import UnitEvidence
from .settings import FAILURE_STATUSES


@dataclass(frozen=True)
class RunFacts:
    """The fields of one run the policy needs. ``prediction_ms_median`` is that run's warm median
    (``insights.summary.prediction_summary(...)["median"]``)."""

    status: str
    load_kind: str | None = None
    load_ms: float | None = None
    first_prediction_ms: float | None = None
    prediction_ms_median: float | None = None


def unit_evidence(compute_units: str, runs: Iterable[RunFacts]) -> UnitEvidence:
    """Evidence of one unit at one level (a device's runs, or all runs on devices with its chip)."""
    total = 0
    failures: Counter = Counter()
    loads: dict[str, list[float]] = defaultdict(list)
    firsts, warms = [], []
    for run in runs:
        total += 1
        if run.status != "ok":
            if run.status in FAILURE_STATUSES:
                failures[run.status] += 1
            continue
        if run.load_kind and run.load_ms is not None:
            loads[run.load_kind].append(run.load_ms)
        if run.first_prediction_ms is not None:
            firsts.append(run.first_prediction_ms)
        if run.prediction_ms_median is not None:
            warms.append(run.prediction_ms_median)
    return UnitEvidence(
        compute_units, total, dict(failures),
        load_ms_median={kind: median(values) for kind, values in loads.items()},
        load_runs={kind: len(values) for kind, values in loads.items()},
        first_prediction_ms_median=median(firsts) if firsts else None,
        prediction_ms_median=median(warms) if warms else None)

"""Per-run summary of warm predictions, computed once at ingest and stored in columns."""
import math

SUMMARY_FIELDS = ("count", "min", "median", "p90", "p99", "mean", "std")


def _percentile(ordered, q):
    # Linear interpolation between closest ranks: numpy's default, so figures match numpy.percentile.
    pos = (len(ordered) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def prediction_summary(values) -> dict:
    """count, min, median, p90, p99, mean and sample std (ddof=1) of one run's warm predictions in ms.

    Empty input gives count 0 and None elsewhere; one value has no spread, so std is None rather than 0.
    Plain Python on purpose: for the tens of values a run has, numpy's per-call overhead made this the slowest
    step of an upload (~600 us a run against ~15 us).
    """
    n = len(values)
    if n == 0:
        return {"count": 0, **{k: None for k in SUMMARY_FIELDS[1:]}}
    ordered = sorted(map(float, values))
    mean = math.fsum(ordered) / n
    std = None
    if n > 1:  # lists, not generators: ~2 us of an upload's ~100 a run
        deviations = [x - mean for x in ordered]
        std = math.sqrt(math.fsum([d * d for d in deviations]) / (n - 1))
    return {
        "count": n,
        "min": ordered[0],
        "median": _percentile(ordered, 0.5),
        "p90": _percentile(ordered, 0.9),
        "p99": _percentile(ordered, 0.99),
        "mean": mean,
        "std": std,
    }

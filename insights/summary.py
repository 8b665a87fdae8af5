"""Per-run summary of warm predictions, computed once at ingest and stored in columns."""
import numpy as np

SUMMARY_FIELDS = ("count", "min", "median", "p90", "p99", "mean", "std")


def prediction_summary(values) -> dict:
    """count, min, median, p90, p99, mean and sample std (ddof=1) of one run's warm predictions in ms.

    Empty input gives count 0 and None elsewhere; one value has no spread, so std is None rather than 0.
    """
    if len(values) == 0:
        return {"count": 0, **{k: None for k in SUMMARY_FIELDS[1:]}}
    a = np.asarray(values, dtype=float)
    p50, p90, p99 = np.percentile(a, [50, 90, 99])
    return {
        "count": int(a.size),
        "min": float(a.min()),
        "median": float(p50),
        "p90": float(p90),
        "p99": float(p99),
        "mean": float(a.mean()),
        "std": float(a.std(ddof=1)) if a.size > 1 else None,
    }

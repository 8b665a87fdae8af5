"""From the dashboard's aggregates to `insights` inputs: the overview marks, per device, the unit the compute-unit
policy rule (insights.policy) picks from that device's runs under the current filters.

A live page needs a Wilson interval and a policy assessment per device and unit (a few hundred); both depend only on
their integer and median inputs, so they are memoised here. Rollups (dashboard/rollups.py) store them instead.
"""
from functools import lru_cache

from collector.policy_evidence import default_predictions_per_session, policy_settings
from insights.intervals import wilson_interval
from insights.policy import UnitEvidence, recommend_compute_units

from .queries import UnitStats

LOAD_METRICS = {"cold": "load_cold", "cached": "load_cached", "in_memory": "load_in_memory"}


# The overview prices units with the policy API's own settings and default workload, so the two never disagree.
predictions_per_session = default_predictions_per_session


def unit_evidence(stats: UnitStats) -> UnitEvidence:
    return UnitEvidence(
        compute_units=stats.compute_units, runs=stats.runs, failures=dict(stats.failures),
        load_ms_median={kind: stats.medians[key] for kind, key in LOAD_METRICS.items()
                        if stats.medians.get(key) is not None},
        load_runs={kind: stats.counts[key] for kind, key in LOAD_METRICS.items() if stats.counts.get(key)},
        first_prediction_ms_median=stats.medians.get("first_prediction"),
        prediction_ms_median=stats.medians.get("warm"),
    )


def recommended_unit(units: dict[str, UnitStats], predictions: int | None = None) -> str | None:
    """The unit the policy rule picks from this device's own evidence, or None when no unit qualifies there (the
    policy API then backs off to the chip or the default; the policy pages show that)."""
    key = tuple(sorted(
        (s.compute_units, s.runs, tuple(sorted(s.failures.items())), tuple(sorted(s.medians.items())),
         tuple(sorted(s.counts.items()))) for s in units.values()))
    return _recommended(key, predictions or predictions_per_session(), policy_settings())


@lru_cache(maxsize=8192)
def _recommended(key, predictions, conf):
    evidence = [unit_evidence(UnitStats(unit, runs, dict(failures), dict(medians), dict(counts)))
                for unit, runs, failures, medians, counts in key]
    policy = recommend_compute_units(evidence, [], predictions, settings=conf)
    return policy.compute_units if policy.basis == "device" else None


@lru_cache(maxsize=16384)
def failure_interval(failures: int, runs: int):
    """Wilson 95% interval of a failure rate (insights.intervals)."""
    return wilson_interval(failures, runs, 0.95)


def clear_caches():
    """For benchmarks that want every request to pay the full price."""
    _recommended.cache_clear()
    failure_interval.cache_clear()

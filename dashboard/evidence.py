"""From the dashboard's aggregates to `insights` inputs: the overview marks, per device, the unit the compute-unit
policy rule (insights.policy) picks from that device's runs under the current filters.

A live page needs a Wilson interval and a policy assessment per device and unit (a few hundred); both depend only on
their integer and median inputs, so they are memoised here. Rollups (dashboard/rollups.py) store them instead.
"""
from functools import lru_cache

from django.conf import settings

from insights.intervals import wilson_interval
from insights.policy import UnitEvidence, recommend_compute_units
from insights.settings import PolicySettings

from .queries import UnitStats

LOAD_METRICS = {"cold": "load_cold", "cached": "load_cached", "in_memory": "load_in_memory"}


def policy_settings() -> PolicySettings:
    conf = settings.PERFBOARD
    return PolicySettings(min_runs=conf["MIN_RUNS"], max_failure_rate=conf["MAX_FAILURE_RATE"])


def predictions_per_session() -> int:
    """The workload the overview prices units with (the policy API's default)."""
    return int(settings.PERFBOARD.get("POLICY_PREDICTIONS_PER_SESSION", 100))


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
    conf = settings.PERFBOARD
    key = tuple(sorted(
        (s.compute_units, s.runs, tuple(sorted(s.failures.items())), tuple(sorted(s.medians.items())),
         tuple(sorted(s.counts.items()))) for s in units.values()))
    return _recommended(key, predictions or predictions_per_session(), conf["MIN_RUNS"], conf["MAX_FAILURE_RATE"])


@lru_cache(maxsize=8192)
def _recommended(key, predictions, min_runs, max_failure_rate):
    evidence = [unit_evidence(UnitStats(unit, runs, dict(failures), dict(medians), dict(counts)))
                for unit, runs, failures, medians, counts in key]
    conf = PolicySettings(min_runs=min_runs, max_failure_rate=max_failure_rate)
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

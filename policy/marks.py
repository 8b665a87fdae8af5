"""The overview's policy marks: per device, the unit the compute-unit policy rule (insights.policy) picks from that
device's own runs under the current filters, priced with the policy API's settings and default workload
(policy.evidence), so the overview's star and ``GET /api/v1/policy`` on device evidence never disagree.

The inputs are the dashboard's per-unit stats (``dashboard.queries.UnitStats``: ``compute_units``, ``runs``,
``failures`` by status, ``medians`` and ``counts`` by metric key). A live page needs a policy assessment per device
(a few hundred); it depends only on those integers and medians, so it is memoised here. Rollups
(dashboard/rollups.py) store the marks instead.
"""
from functools import lru_cache

from insights.policy import recommend_compute_units
from perfboard.conf import policy_settings

from .evidence import default_predictions_per_session, fallback_samples, fallbacks, unit_evidence

# The overview's workload is the policy API's default one.
predictions_per_session = default_predictions_per_session


def recommended_unit(units: dict, predictions: int | None = None, on_cpu=frozenset()) -> str | None:
    """The unit the policy rule picks from this device's own evidence (``units``: compute units -> UnitStats), or
    None when no unit qualifies there (the policy API then backs off to the chip or the default; the policy pages
    show that). ``on_cpu``: units whose runs silently ran on the CPU (:func:`runs_on_cpu`), never picked."""
    key = tuple(sorted(
        (s.compute_units, s.runs, tuple(sorted(s.failures.items())), tuple(sorted(s.medians.items())),
         tuple(sorted(s.counts.items())), s.compute_units in on_cpu) for s in units.values()))
    return _recommended(key, predictions or predictions_per_session(), policy_settings())


def runs_on_cpu(runs, by: str = "device") -> dict[object, set[str]]:
    """Per device pk (or chip) of ``runs``, the Neural Engine units whose runs silently ran on the CPU
    (policy.evidence.fallbacks: any of their configurations; one query)."""
    out: dict[object, set[str]] = {}
    for level, config in fallbacks(fallback_samples(runs), by):
        out.setdefault(level, set()).add(config.compute_units)
    return out


@lru_cache(maxsize=8192)
def _recommended(key, predictions, conf):
    evidence = [unit_evidence(unit, runs, dict(failures), dict(medians), dict(counts),
                              runs_on_cpu=f"{unit} runs on the CPU" if on_cpu else "")
                for unit, runs, failures, medians, counts, on_cpu in key]
    policy = recommend_compute_units(evidence, [], predictions, settings=conf)
    return policy.compute_units if policy.basis == "device" else None


def clear_caches():
    """For benchmarks that want every request to pay the full price."""
    _recommended.cache_clear()

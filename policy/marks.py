"""The overview's policy marks: per device (or chip) row, the configuration the compute-unit policy picks, computed
by ``policy.evidence`` itself (the same evidence per configuration, chip back-off, silent-fallback marks, settings and
default workload as ``GET /api/v1/policy`` and the policy page), so the overview's star and the API cannot disagree,
hinted runs (``optimization_hints``) included: the star falls on the unit of the policy's configuration.

A row is marked only when the policy is decided on that row's own runs (basis ``device``); where it leans on the
chip or is the conservative default, the policy page says so and the overview marks nothing.
"""
from insights.policy import recommend_compute_units
from insights.vocabulary import COMPUTE_UNITS, Configuration
from perfboard.conf import policy_settings

from .evidence import FallbackSamples, default_predictions_per_session, fallbacks, gather_evidence, policy_table

# The overview's workload is the policy API's default one.
predictions_per_session = default_predictions_per_session


def policy_choices(model_version, runs, by: str = "device", units=COMPUTE_UNITS,
                   predictions: int | None = None, samples: FallbackSamples | None = None) -> dict[object, Configuration]:
    """Per device pk (``by="device"``) or chip of ``runs`` (of ``model_version``), the configuration the policy
    picks when its own runs decide it. Device rows are ``policy.evidence.policy_table``'s answers (what
    ``GET /api/v1/policy`` answers on the same runs); a chip row is the same rule on the chip's pooled runs.
    ``samples``: the runs' ``policy.evidence.fallback_samples``, when the caller has them."""
    n = predictions or predictions_per_session()
    conf = policy_settings()
    if by == "device":
        table = policy_table(model_version, n, None, "measured", units, conf, runs=runs, samples=samples)
        return {e.device.pk: e.policy.configuration for e in table if e.policy.basis == "device"}
    out = {}
    for chip, evidence in gather_evidence(runs.filter(model_version=model_version), "chip", units,
                                          samples=samples).items():
        policy = recommend_compute_units(evidence, [], n, settings=conf)
        if policy.basis == "device":
            out[chip] = policy.configuration
    return out


def runs_on_cpu(samples: FallbackSamples, by: str = "device") -> dict[object, set[str]]:
    """Per device pk (or chip) of some runs' ``policy.evidence.fallback_samples``, the Neural Engine units whose runs
    silently ran on the CPU (policy.evidence.fallbacks: any of their configurations)."""
    out: dict[object, set[str]] = {}
    for level, config in fallbacks(samples, by):
        out.setdefault(level, set()).add(config.compute_units)
    return out

"""The one adapter between Django settings and the code: PERFBOARD keys by name, and the typed settings objects.

Every key is declared once in ``perfboard.settings.PERFBOARD_SETTINGS`` (type, default, meaning; the defaults of the
statistics' thresholds are the ``insights.settings`` dataclasses' own). :func:`perfboard_setting` refuses a key that
is not declared there, and the builders below fill each settings class from the keys that feed it; anything the
table does not feed keeps the class's default. Values are read at call time, so ``override_settings`` works.
"""
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from insights.settings import ComparisonSettings, DetectionSettings, PolicySettings
from profiling.ziputil import Limits


def declared() -> dict:
    """The declaration table, by key."""
    return {s.key: s for s in settings.PERFBOARD_SETTINGS}


def perfboard_setting(key: str):
    """``settings.PERFBOARD[key]``; raises ImproperlyConfigured for a key that is not declared."""
    if key not in declared():
        raise ImproperlyConfigured(f"PERFBOARD[{key!r}] is not declared in perfboard/settings.py "
                                   f"(PERFBOARD_SETTINGS)")
    return settings.PERFBOARD[key]


def _build(cls):
    values = {s.feeds[1]: perfboard_setting(s.key) for s in settings.PERFBOARD_SETTINGS
              if s.feeds and s.feeds[0] is cls}
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        keys = ", ".join(s.key for s in settings.PERFBOARD_SETTINGS if s.feeds and s.feeds[0] is cls)
        raise ImproperlyConfigured(f"PERFBOARD ({keys}): {exc}") from exc


def policy_settings() -> PolicySettings:
    """The compute-unit policy's thresholds (MIN_RUNS, MAX_FAILURE_RATE, POLICY_DEFAULT_COMPUTE_UNITS, ...)."""
    return _build(PolicySettings)


def detection_settings() -> DetectionSettings:
    """The regression check's thresholds (MIN_EFFECT, ALPHA, DETECTION_*, MIN_PLACEMENT_SHARE_DROP)."""
    return _build(DetectionSettings)


def comparison_settings() -> ComparisonSettings:
    """The variant comparison's thresholds (COMPARISON_*)."""
    return _build(ComparisonSettings)


def upload_limits() -> Limits:
    """Profiling's upload limits (PROFILING_MAX_UPLOAD_BYTES, PROFILING_MAX_UNCOMPRESSED_BYTES)."""
    return _build(Limits)

"""How an alert's numbers read on the pages: with their units (ms, MB; rates and Neural Engine shares in %), from
insights.vocabulary's metrics. Pure functions, no database."""
from insights.vocabulary import ALERT_METRIC_LABELS, CRASH_METRIC, METRICS_BY_ALERT_NAME, PLACEMENT_METRIC

SHARES = {CRASH_METRIC, PLACEMENT_METRIC}  # stored as fractions, shown in %


def unit(metric: str) -> str:
    if metric in SHARES:
        return "%"
    known = METRICS_BY_ALERT_NAME.get(metric)
    return known.unit if known else ""


def metric_label(metric: str) -> str:
    return ALERT_METRIC_LABELS.get(metric, metric)


def value_text(metric: str, value: float | None) -> str:
    """``12.10 ms``, ``1,430 ms``, ``812 MB``, ``25.0%``."""
    if value is None:
        return "–"
    if metric in SHARES:
        return f"{value:.1%}"
    digits = 2 if abs(value) < 100 else 0
    return f"{value:,.{digits}f} {unit(metric)}".rstrip()


def change_text(kind: str, change: float) -> str:
    """Relative for times and sizes (``+15.7%``), a difference in points for rates and shares (``+25.0 pts``)."""
    if kind in ("slowdown", "silent_fallback"):  # silent_fallback: the warm median's change, relative
        return f"{change:+.1%}"
    return f"{change * 100:+.1f} pts"

"""The alerts page's rows: alert summaries (one per project, model and version) of the alerts a filter selects,
with what a person reads first: how many alerts in which state, where, which compute units and metrics, and the
worst change of each kind. A summary none of whose selected alerts is left (e.g. all withdrawn) is not listed."""
from collections import Counter
from dataclasses import dataclass, field

from .display import change_text, metric_label, value_text
from .models import STATES, Alert, AlertSummary


@dataclass
class SummaryRow:
    summary: AlertSummary
    alerts: list[Alert] = field(default_factory=list)

    @property
    def states(self) -> list[tuple[str, int]]:
        counts = Counter(a.state for a in self.alerts)
        return [(s, counts[s]) for s in STATES if counts[s]]

    @property
    def baseline_versions(self) -> list[str]:
        return sorted({a.baseline_version for a in self.alerts})

    @property
    def places(self) -> list[str]:
        """Chips, or the devices where an alert is one device's."""
        return sorted({a.device.display_name if a.device_id else a.chip for a in self.alerts})

    @property
    def compute_units(self) -> list[str]:
        return sorted({a.compute_units for a in self.alerts})

    @property
    def metrics(self) -> list[str]:
        return sorted({metric_label(a.metric) for a in self.alerts})

    @property
    def worst(self) -> list[dict]:
        """Per kind, the alert with the largest change: what it is and its numbers with units."""
        rows = []
        for kind in dict.fromkeys(a.kind for a in self.alerts):
            a = max((a for a in self.alerts if a.kind == kind), key=lambda a: abs(a.change))
            rows.append({"alert": a, "change": change_text(a.kind, a.change), "metric": metric_label(a.metric),
                         "baseline": value_text(a.metric, a.baseline), "current": value_text(a.metric, a.current)})
        return rows

    @property
    def newest(self):
        return max(a.created_at for a in self.alerts)


def summaries_of(alerts) -> "QuerySet[AlertSummary]":  # noqa: F821
    """The summaries holding any of ``alerts`` (a queryset), newest first."""
    return (AlertSummary.objects.filter(id__in=alerts.values("summary_id"))
            .select_related("project", "state_changed_by").order_by("-created_at", "-id"))


def rows(summaries, alerts) -> list[SummaryRow]:
    """One row per summary, holding those of ``alerts`` that belong to it (most changed first)."""
    by_id = {s.id: SummaryRow(s) for s in summaries}
    for alert in alerts.filter(summary_id__in=list(by_id)).order_by("-change", "id"):
        by_id[alert.summary_id].alerts.append(alert)
    return [row for row in by_id.values() if row.alerts]


def annotate(alert: Alert) -> Alert:
    """The texts a table of alerts shows, with units."""
    alert.metric_label = metric_label(alert.metric)
    alert.baseline_text = value_text(alert.metric, alert.baseline)
    alert.current_text = value_text(alert.metric, alert.current)
    alert.change_text = change_text(alert.kind, alert.change)
    return alert

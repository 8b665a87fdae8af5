"""Evidence plots of an alert: pure builders, plain data in, a Plotly figure out (no Django, no database).

Drawn with the dashboard's figure helpers (dashboard.figures.common), so alerts look like every other page.
"""
from collections.abc import Sequence

from dashboard.figures.common import FAILURE_COLOR, figure, layout, to_html  # noqa: F401 (to_html: for the views)

BASELINE_COLOR, CURRENT_COLOR = "#8c8c8c", FAILURE_COLOR


def timing_evidence(baseline: Sequence[tuple], current: Sequence[tuple], *, metric_label: str,
                    baseline_version: str, version: str, baseline_value: float, current_value: float,
                    unit: str = "ms"):
    """Each run of both windows as a point in time order, ``(started_at, value)``, with each window's median as a
    line: the step the alert is about, and the noise around it."""
    data = []
    windows = ((baseline, f"baseline (up to {baseline_version})", BASELINE_COLOR, baseline_value),
               (current, version, CURRENT_COLOR, current_value))
    for points, name, color, level in windows:
        xs = [p[0] for p in points]
        data.append(dict(type="scatter", x=xs, y=[p[1] for p in points], mode="markers",
                         name=f"{name} ({len(points)} runs)", marker=dict(color=color, size=6, opacity=0.7)))
        if xs:
            data.append(dict(type="scatter", x=[min(xs), max(xs)], y=[level, level], mode="lines", showlegend=False,
                             name=f"median {name}", line=dict(color=color, width=3)))
    return figure(data, layout(f"{metric_label}: {baseline_version} → {version}", 360,
                               yaxis=dict(title=dict(text=f"{metric_label} ({unit})"), rangemode="tozero")))


def rate_evidence(baseline_rate: float, baseline_runs: int, current_rate: float, current_runs: int, *,
                  baseline_version: str, version: str):
    """Failure rate of both windows, with the number of runs behind each bar."""
    bar = dict(type="bar", x=[f"baseline (up to {baseline_version})", version], y=[baseline_rate, current_rate],
               marker=dict(color=[BASELINE_COLOR, CURRENT_COLOR]), textposition="outside",
               text=[f"{baseline_rate:.1%} of {baseline_runs}", f"{current_rate:.1%} of {current_runs}"])
    return figure([bar], layout(f"Failure rate: {baseline_version} → {version}", 320, yaxis=dict(
        title=dict(text="failure rate"), tickformat=".0%", rangemode="tozero")))


def placement_evidence(baseline_share: float, current_share: float, *, baseline_label: str,
                       current_label: str):
    """The Neural Engine's share of ops in both compute plans."""
    bar = dict(type="bar", x=[baseline_label, current_label], y=[baseline_share, current_share],
               marker=dict(color=[BASELINE_COLOR, CURRENT_COLOR]), textposition="outside",
               text=[f"{baseline_share:.0%}", f"{current_share:.0%}"])
    return figure([bar], layout("Neural Engine placement", 320, yaxis=dict(
        title=dict(text="ops on the Neural Engine"), tickformat=".0%", range=[0, 1.1])))

"""Evidence plots of an alert: pure builders, plain data in, a Plotly figure out (no Django, no database).

The look follows dashboard.figures.common (light, no plotly.com links) but is set here, so that these pages do not
break while the dashboard's helpers are being reworked.
"""
from collections.abc import Sequence

import plotly.graph_objects as go
import plotly.io as pio

CONFIG = {"displaylogo": False, "responsive": True, "modeBarButtonsToRemove": ["sendDataToCloud"]}

BASELINE_COLOR, CURRENT_COLOR = "#8c8c8c", "#c62828"


def timing_evidence(baseline: Sequence[tuple], current: Sequence[tuple], *, metric_label: str,
                    baseline_version: str, version: str, baseline_value: float, current_value: float,
                    unit: str = "ms") -> go.Figure:
    """Each run of both windows as a point in time order, ``(started_at, value)``, with each window's median as a
    line: the step the alert is about, and the noise around it."""
    fig = go.Figure()
    windows = ((baseline, f"baseline (up to {baseline_version})", BASELINE_COLOR, baseline_value),
               (current, version, CURRENT_COLOR, current_value))
    for points, name, color, level in windows:
        xs = [p[0] for p in points]
        fig.add_trace(go.Scatter(x=xs, y=[p[1] for p in points], mode="markers", name=f"{name} ({len(points)} runs)",
                                 marker=dict(color=color, size=6, opacity=0.7)))
        if xs:
            fig.add_trace(go.Scatter(x=[min(xs), max(xs)], y=[level, level], mode="lines", showlegend=False,
                                     name=f"median {name}", line=dict(color=color, width=3)))
    fig.update_yaxes(title_text=f"{metric_label} ({unit})", rangemode="tozero")
    return base_layout(fig, title=f"{metric_label}: {baseline_version} → {version}", height=360)


def rate_evidence(baseline_rate: float, baseline_runs: int, current_rate: float, current_runs: int, *,
                  baseline_version: str, version: str) -> go.Figure:
    """Failure rate of both windows, with the number of runs behind each bar."""
    fig = go.Figure(go.Bar(
        x=[f"baseline (up to {baseline_version})", version], y=[baseline_rate, current_rate],
        marker_color=[BASELINE_COLOR, CURRENT_COLOR],
        text=[f"{baseline_rate:.1%} of {baseline_runs}", f"{current_rate:.1%} of {current_runs}"],
        textposition="outside"))
    fig.update_yaxes(title_text="failure rate", tickformat=".0%", rangemode="tozero")
    return base_layout(fig, title=f"Failure rate: {baseline_version} → {version}", height=320)


def placement_evidence(baseline_share: float, current_share: float, *, baseline_label: str,
                       current_label: str) -> go.Figure:
    """The Neural Engine's share of ops in both compute plans."""
    fig = go.Figure(go.Bar(x=[baseline_label, current_label], y=[baseline_share, current_share],
                           marker_color=[BASELINE_COLOR, CURRENT_COLOR],
                           text=[f"{baseline_share:.0%}", f"{current_share:.0%}"], textposition="outside"))
    fig.update_yaxes(title_text="ops on the Neural Engine", tickformat=".0%", range=[0, 1.1])
    return base_layout(fig, title="Neural Engine placement", height=320)


def base_layout(fig: go.Figure, title: str, height: int) -> go.Figure:
    fig.update_layout(
        template="none", paper_bgcolor="white", plot_bgcolor="white", height=height,
        margin=dict(l=10, r=10, t=80, b=10), title=dict(text=title, x=0, xanchor="left", font=dict(size=14)),
        font=dict(family="-apple-system, Segoe UI, Roboto, Helvetica, Arial, sans-serif", size=12, color="#1d232b"),
        legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="left", x=0))
    fig.update_xaxes(gridcolor="#eef1f4", linecolor="#c9d1d9", zeroline=False, automargin=True)
    fig.update_yaxes(gridcolor="#eef1f4", linecolor="#c9d1d9", zeroline=False, automargin=True)
    return fig


def to_html(fig: go.Figure, div_id: str) -> str:
    """A <div> and the script drawing the figure with the page's own Plotly (loaded by dashboard/base.html)."""
    return pio.to_html(fig, full_html=False, include_plotlyjs=False, div_id=div_id, config=CONFIG, validate=False)

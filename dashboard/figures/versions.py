"""The versions page: a metric across model versions per chip (or device) and unit, and over time, with interval
bands so a regression stands out."""
import math
from dataclasses import dataclass

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .common import UNIT_COLORS, base_layout, ms


@dataclass(frozen=True)
class Point:
    median: float
    low: float | None
    high: float | None
    n: int


def _rgba(hex_color: str, alpha: float) -> str:
    h = hex_color.lstrip("#")
    return f"rgba({int(h[0:2], 16)}, {int(h[2:4], 16)}, {int(h[4:6], 16)}, {alpha})"


def across_versions(panels: list[str], units: list[str], versions: list[str], points: dict, *, title: str,
                    value_label: str, min_runs: int, columns: int = 3) -> go.Figure:
    """Small multiples, one panel per chip or device: x = model version (oldest first), one line per unit with its
    95% interval as error bars; points {(panel, unit, version): Point}. Points with fewer than `min_runs` runs are
    hollow."""
    panels = list(panels)
    cols = max(1, min(columns, len(panels)))
    nrows = max(1, math.ceil(len(panels) / cols))
    fig = make_subplots(rows=nrows, cols=cols, subplot_titles=panels or [""], shared_xaxes=False,
                        vertical_spacing=min(0.12, 0.5 / nrows), horizontal_spacing=0.06)
    shown = set()
    for i, panel in enumerate(panels):
        r, c = i // cols + 1, i % cols + 1
        for unit in units:
            xs = [v for v in versions if (panel, unit, v) in points]
            if not xs:
                continue
            ps = [points[(panel, unit, v)] for v in xs]
            color = UNIT_COLORS.get(unit, "#333")
            fig.add_trace(go.Scatter(
                x=xs, y=[p.median for p in ps], mode="lines+markers", name=unit, legendgroup=unit,
                showlegend=unit not in shown, line=dict(color=color, width=2),
                marker=dict(size=8, color=[color if p.n >= min_runs else "white" for p in ps],
                            line=dict(color=color, width=2)),
                error_y=dict(type="data", symmetric=False,
                             array=[(p.high - p.median) if p.high is not None else 0 for p in ps],
                             arrayminus=[(p.median - p.low) if p.low is not None else 0 for p in ps],
                             color=_rgba(color, 0.6), thickness=1.5, width=4),
                hovertext=[f"{panel} · {unit} · {v}<br>median {ms(p.median)}"
                           + (f"<br>95% interval {ms(p.low)} – {ms(p.high)}" if p.low is not None else "")
                           + f"<br>{p.n} runs" + ("" if p.n >= min_runs else " (too few)") for v, p in zip(xs, ps)],
                hoverinfo="text"), row=r, col=c)
            shown.add(unit)
    height = max(340, 250 * nrows + 120)
    base_layout(fig, title, height=height)
    # Legend above the panel titles.
    fig.update_layout(margin=dict(t=110), legend=dict(y=1 + 45 / height, yanchor="bottom"))
    fig.update_xaxes(type="category", categoryorder="array", categoryarray=list(versions))
    fig.update_yaxes(rangemode="tozero")
    fig.update_yaxes(title=value_label, col=1)
    return fig


def over_time(units: list[str], series: dict, version_starts: dict, *, title: str, value_label: str) -> go.Figure:
    """Daily medians per unit with a shaded 95% band; series {unit: [(day, Point), ...]} sorted by day;
    version_starts {version: datetime of its first run} drawn as vertical lines."""
    fig = go.Figure()
    for unit in units:
        pts = series.get(unit) or []
        if not pts:
            continue
        color = UNIT_COLORS.get(unit, "#333")
        days = [d for d, _ in pts]
        banded = [(d, p) for d, p in pts if p.low is not None]
        if banded:
            fig.add_trace(go.Scatter(
                x=[d for d, _ in banded] + [d for d, _ in reversed(banded)],
                y=[p.high for _, p in banded] + [p.low for _, p in reversed(banded)],
                fill="toself", fillcolor=_rgba(color, 0.15), line=dict(width=0), hoverinfo="skip",
                legendgroup=unit, showlegend=False, name=f"{unit} 95% interval"))
        fig.add_trace(go.Scatter(
            x=days, y=[p.median for _, p in pts], mode="lines+markers", name=unit, legendgroup=unit,
            line=dict(color=color, width=2), marker=dict(size=4),
            hovertext=[f"{d:%Y-%m-%d} · {unit}<br>median {ms(p.median)} · {p.n} runs" for d, p in pts],
            hoverinfo="text"))
    for version, start in sorted(version_starts.items(), key=lambda kv: kv[1]):
        fig.add_vline(x=start, line=dict(color="#888", dash="dot", width=1))
        fig.add_annotation(x=start, y=1, yref="paper", text=version, showarrow=False, xanchor="left",
                           yanchor="bottom", font=dict(size=11, color="#555"))
    base_layout(fig, title, height=380)
    fig.update_yaxes(title=value_label, rangemode="tozero")
    return fig

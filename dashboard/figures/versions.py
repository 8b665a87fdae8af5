"""The versions page: a metric across model versions per chip (or device) and unit, and over time, with interval
bands so a regression stands out."""
import math
from dataclasses import dataclass

from .common import AXIS, UNIT_COLORS, figure, layout, ms


@dataclass(frozen=True)
class Point:
    median: float
    low: float | None
    high: float | None
    n: int


def _rgba(hex_color: str, alpha: float) -> str:
    h = hex_color.lstrip("#")
    return f"rgba({int(h[0:2], 16)}, {int(h[2:4], 16)}, {int(h[4:6], 16)}, {alpha})"


def grid(n: int, columns: int, *, gap_x: float = 0.06, gap_y: float = 0.1):
    """Axis layouts and title positions of an n-panel grid (plotly's make_subplots, without its per-call cost).
    Returns (axis layout entries, [(x, y) of each panel's title], rows)."""
    cols = max(1, min(columns, n))
    rows = max(1, math.ceil(n / cols))
    gap_y = min(gap_y, 0.5 / rows)
    width = (1 - gap_x * (cols - 1)) / cols
    height = (1 - gap_y * (rows - 1)) / rows
    axes, titles = {}, []
    for i in range(n):
        r, c = divmod(i, cols)
        x0 = c * (width + gap_x)
        y1 = 1 - r * (height + gap_y)
        suffix = "" if i == 0 else str(i + 1)
        axes[f"xaxis{suffix}"] = dict(AXIS, domain=_inside(x0, x0 + width), anchor=f"y{suffix}")
        axes[f"yaxis{suffix}"] = dict(AXIS, domain=_inside(y1 - height, y1), anchor=f"x{suffix}")
        titles.append((x0 + width / 2, y1))
    return axes, titles, rows


def _inside(low: float, high: float) -> list[float]:
    """A domain clamped into [0, 1]: the sums above round to -5.55e-17 for the bottom row of 4 (issue 13), and
    Plotly refuses a domain outside [0, 1] (the page answered 500)."""
    return [min(max(low, 0.0), 1.0), min(max(high, 0.0), 1.0)]


def across_versions(panels: list[str], units: list[str], versions: list[str], points: dict, *, title: str,
                    value_label: str, min_runs: int, columns: int = 3, relative: bool = False,
                    min_span: float = 0.05):
    """Small multiples, one panel per chip or device: x = model version (oldest first), one line per unit with its
    95% interval as error bars; points {(panel, unit, version): Point}. Points with fewer than `min_runs` runs are
    hollow. relative=True plots each line as the change from its first version (+15% reads the same for a 3 ms and
    a 100 ms unit); the hover keeps the values. Relative panels share one y range, at least +-`min_span` (the
    smallest change worth an alert), so noise stays flat and a real step stands out."""
    panels = list(panels)
    axes, title_positions, nrows = grid(max(len(panels), 1), columns)
    data, shown, extremes = [], set(), [-min_span, min_span]
    for i, panel in enumerate(panels):
        suffix = "" if i == 0 else str(i + 1)
        for unit in units:
            xs = [v for v in versions if (panel, unit, v) in points]
            if not xs:
                continue
            ps = [points[(panel, unit, v)] for v in xs]
            color = UNIT_COLORS.get(unit, "#333")
            base = ps[0].median if relative and ps[0].median else None
            scale = (lambda v: v / base - 1.0) if base else (lambda v: v)  # noqa: E731
            if base:
                extremes += [scale(p.low if p.low is not None else p.median) for p in ps]
                extremes += [scale(p.high if p.high is not None else p.median) for p in ps]
            data.append(dict(
                type="scatter", xaxis=f"x{suffix}", yaxis=f"y{suffix}", x=xs, y=[scale(p.median) for p in ps],
                mode="lines+markers", name=unit, legendgroup=unit, showlegend=unit not in shown,
                line=dict(color=color, width=2),
                marker=dict(size=8, color=[color if p.n >= min_runs else "white" for p in ps],
                            line=dict(color=color, width=2)),
                error_y=dict(type="data", symmetric=False,
                             array=[(scale(p.high) - scale(p.median)) if p.high is not None else 0 for p in ps],
                             arrayminus=[(scale(p.median) - scale(p.low)) if p.low is not None else 0 for p in ps],
                             color=_rgba(color, 0.6), thickness=1.5, width=4),
                hovertext=[f"{panel} · {unit} · {v}<br>median {ms(p.median)}"
                           + (f" ({scale(p.median):+.1%} vs {xs[0]})" if base else "")
                           + (f"<br>95% interval {ms(p.low)} – {ms(p.high)}" if p.low is not None else "")
                           + f"<br>{p.n} runs" + ("" if p.n >= min_runs else " (too few)") for v, p in zip(xs, ps)],
                hoverinfo="text"))
            shown.add(unit)
    for key, axis in axes.items():
        if key.startswith("xaxis"):
            axis.update(type="category", categoryorder="array", categoryarray=list(versions))
        elif relative:
            pad = 0.1 * (max(extremes) - min(extremes))
            axis.update(tickformat="+.0%", zeroline=True, zerolinecolor="#9aa4b1",
                        range=[min(extremes) - pad, max(extremes) + pad])
        else:
            axis.update(rangemode="tozero")
    axes["yaxis"]["title"] = dict(text="change vs first version" if relative else value_label)
    notes = [dict(text=panel, x=x, y=y, xref="paper", yref="paper", xanchor="center", yanchor="bottom",
                  showarrow=False, font=dict(size=13)) for panel, (x, y) in zip(panels, title_positions)]
    height = max(340, 250 * nrows + 120)
    return figure(data, layout(title, height=height, annotations=notes, margin=dict(t=110),
                               legend=dict(y=1 + 45 / height, yanchor="bottom"), **axes))


def over_time(units: list[str], series: dict, version_starts: dict, *, title: str, value_label: str):
    """Daily medians per unit with a shaded 95% band; series {unit: [(day, Point), ...]} sorted by day, or
    {(unit, version): [...]} for one segment per version (same colour, one legend entry per unit);
    version_starts {version: date (or time) of its first run} drawn as vertical lines."""
    data, shown = [], set()
    keys = [k for u in units for k in series if (k if isinstance(k, str) else k[0]) == u]
    for key in keys:
        unit = key if isinstance(key, str) else key[0]
        pts = series.get(key) or []
        if not pts:
            continue
        color = UNIT_COLORS.get(unit, "#333")
        days = [d for d, _ in pts]
        banded = [(d, p) for d, p in pts if p.low is not None]
        if banded:
            data.append(dict(
                type="scatter", x=[d for d, _ in banded] + [d for d, _ in reversed(banded)],
                y=[p.high for _, p in banded] + [p.low for _, p in reversed(banded)],
                fill="toself", fillcolor=_rgba(color, 0.15), line=dict(width=0), hoverinfo="skip",
                legendgroup=unit, showlegend=False, name=f"{unit} 95% interval"))
        segment = "" if isinstance(key, str) else f" · {key[1]}"
        data.append(dict(
            type="scatter", x=days, y=[p.median for _, p in pts], mode="lines+markers", name=unit, legendgroup=unit,
            showlegend=unit not in shown, line=dict(color=color, width=2), marker=dict(size=4),
            hovertext=[f"{d:%Y-%m-%d} · {unit}{segment}<br>median {ms(p.median)} · {p.n} runs" for d, p in pts],
            hoverinfo="text"))
        shown.add(unit)
    starts = sorted(version_starts.items(), key=lambda kv: kv[1])
    shapes = [dict(type="line", x0=start, x1=start, xref="x", yref="paper", y0=0, y1=1,
                   line=dict(color="#888", dash="dot", width=1)) for _, start in starts]
    notes = [dict(x=start, y=1, yref="paper", text=version, showarrow=False, xanchor="left", yanchor="bottom",
                  font=dict(size=11, color="#555")) for version, start in starts]
    return figure(data, layout(title, height=380, shapes=shapes, annotations=notes,
                               yaxis=dict(title=dict(text=value_label), rangemode="tozero")))

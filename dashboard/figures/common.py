"""What every figure shares: one colour per compute unit, metric names in the user's words, the HTML embedding."""
import json
import math

import plotly.graph_objects as go
import plotly.io as pio

from insights.vocabulary import COMPUTE_UNITS, LAUNCH_STAGES

# Same colour for a unit (in the vocabulary's order) and a launch stage on every page.
UNIT_COLORS = dict(zip(COMPUTE_UNITS, ("#8c8c8c", "#2a9d8f", "#6a4c93", "#e76f51")))
STAGE_COLORS = dict(zip(LAUNCH_STAGES, ("#8ecae6", "#ffb703", "#219ebc", "#fb8500")))
FAILURE_COLOR = "#c62828"
UNDERSAMPLED_COLOR = "#e9ecef"

# Plotly's config for every plot: no plotly.com links (closed networks), no logo.
CONFIG = {"displaylogo": False, "responsive": True, "modeBarButtonsToRemove": ["sendDataToCloud"]}


AXIS = dict(gridcolor="#eef1f4", linecolor="#c9d1d9", zeroline=False, automargin=True)
EMPTY_TEMPLATE = {"data": {}, "layout": {}}


def merge(base: dict, changes: dict) -> dict:
    """`base` updated by `changes`, recursing into nested dicts (like Figure.update_layout)."""
    out = dict(base)
    for key, value in changes.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def layout(title: str | None = None, height: int | None = None, **changes) -> dict:
    """The shared look as a layout dict; `changes` are merged in (nested dicts too)."""
    base = dict(
        template=EMPTY_TEMPLATE, paper_bgcolor="white", plot_bgcolor="white",
        margin=dict(l=10, r=10, t=80 if title else 20, b=10),
        font=dict(family="-apple-system, Segoe UI, Roboto, Helvetica, Arial, sans-serif", size=12, color="#1d232b"),
        legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="left", x=0),
        hoverlabel=dict(bgcolor="white"), xaxis=dict(AXIS), yaxis=dict(AXIS),
    )
    if title:
        # Title on top of the figure, the legend between it and the plot.
        base["title"] = dict(text=title, x=0, xanchor="left", y=0.995, yref="container", yanchor="top",
                             font=dict(size=14))
    if height:
        base["height"] = height
    return merge(base, changes)


def figure(data: list[dict], layout: dict) -> go.Figure:
    """A Figure from plain trace and layout dicts, built in one go without plotly's property validation.

    Validation costs tens of milliseconds per figure (hundreds with a named template) on every page view, and the
    builders' outputs are fixed by their tests; plotly.js ignores nothing it is given here.
    """
    return go.Figure(data=data, layout=layout, _validate=False)


def base_layout(fig: go.Figure, title: str | None = None, height: int | None = None) -> go.Figure:
    """Apply the shared look to a Figure built with graph objects (validated: slower than `figure(data, layout)`)."""
    fig.update_layout(layout(title, height))
    return fig


def ms(value: float | None) -> str:
    """A duration as people read it: 0.84 ms, 12.3 ms, 1,430 ms, 12.5 s."""
    if value is None:
        return "–"
    if value >= 10_000:
        return f"{value / 1000:.1f} s"
    if value >= 1000:
        return f"{value:,.0f} ms"
    if value >= 10:
        return f"{value:.1f} ms"
    return f"{value:.2f} ms"


def duration_ticks(low_ms: float, high_ms: float) -> dict:
    """Ticks of a log axis of milliseconds from `low_ms` to `high_ms`, labelled as durations ("20 ms", "500 ms",
    "2 s") at 1-2-5 steps (only powers of ten past four decades), for an axis's layout. Plotly's own log ticks label
    the steps between powers of ten with a bare digit ("2 5 2 5"), which reads as nothing."""
    low_ms, high_ms = max(min(low_ms, high_ms), 1e-3), max(low_ms, high_ms, 1e-3)
    first, last = math.floor(math.log10(low_ms)), math.ceil(math.log10(high_ms))
    steps = (1, 2, 5) if last - first <= 4 else (1,)
    values = [m * 10.0 ** e for e in range(first, last + 1) for m in steps]
    inside = [v for v in values if low_ms <= v <= high_ms]
    # One step beyond each end, so the lowest and highest data have a label near them.
    below = [v for v in values if v < low_ms][-1:]
    above = [v for v in values if v > high_ms][:1]
    ticks = below + inside + above
    return dict(tickmode="array", tickvals=ticks, ticktext=[duration_label(v) for v in ticks])


def duration_label(value_ms: float) -> str:
    """A tick's duration: 0.5 ms, 20 ms, 500 ms, 1 s, 20 s."""
    value = round(value_ms, 6)
    return f"{value / 1000:g} s" if value >= 1000 else f"{value:g} ms"


def percent(rate: float | None) -> str:
    if rate is None:
        return "–"
    if rate == 0:
        return "0%"
    if rate < 0.001:
        return "<0.1%"
    return f"{rate:.1%}"


def to_html(fig: go.Figure, div_id: str) -> str:
    """A <div> and the script that draws the figure: `perfboardPlot` (base.html) fetches the page's Plotly bundle with
    the first chart, so pages without charts load no chart code. The figure's JSON is plotly's own, which escapes
    `<`, `>` and `/` (no `</script>` can end the script early)."""
    return (f'<div id="{div_id}" class="plotly-graph-div" style="height:100%; width:100%;"></div>'
            f'<script>perfboardPlot("{div_id}", {pio.to_json(fig, validate=False)}, {json.dumps(CONFIG)});</script>')

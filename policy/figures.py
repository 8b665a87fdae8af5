"""Figures of the policy pages: the break-even chart of a device, the cold-start split and the variant A/B chart.

Pure: plain dataclasses in (built by ``policy.queries``), a ``plotly.graph_objects.Figure`` out.
"""
import math
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go

from dashboard.figures.common import FAILURE_COLOR, STAGE_COLORS, UNIT_COLORS, base_layout, duration_ticks, ms
from insights.vocabulary import LAUNCH_STAGES, LOAD_KIND_NAMES, STAGE_NAMES


# --- break-even -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SessionLine:
    """A configuration's expected session time: ``start_ms + (n - 1) * prediction_ms`` for n predictions.

    ``compute_units`` is the configuration's label (its unit, then any hints: "cpuAndNeuralEngine + fastPrediction").
    start_ms is load + first prediction. ``eligible`` False draws the line dashed (the policy may not choose it;
    ``note`` says why); a hinted configuration is drawn in its unit's colour, dash-dotted."""

    compute_units: str
    start_ms: float
    prediction_ms: float
    eligible: bool = True
    note: str = ""
    runs: int = 0

    def at(self, n):
        return self.start_ms + (np.asarray(n, dtype=float) - 1.0) * self.prediction_ms

    @property
    def color(self) -> str:
        return unit_color(self.compute_units)

    @property
    def hinted(self) -> bool:
        return " + " in self.compute_units


def unit_color(label: str) -> str:
    """A unit's colour, for a configuration label too (the unit comes first)."""
    return UNIT_COLORS.get(label.split(" + ")[0], "#444")


@dataclass(frozen=True)
class Crossing:
    """Where ``faster`` (the faster-predicting unit) catches up with ``cheaper`` (the cheaper start)."""

    cheaper: str
    faster: str
    predictions: float  # real-valued break-even; the faster unit wins from ceil(predictions) on
    session_ms: float


def break_even_span(lines: list[SessionLine], crossings: list[Crossing], predictions_per_session: int) -> int:
    """The largest n drawn: past the last crossing and the chosen workload, at least 20."""
    far = max([c.predictions for c in crossings] + [1.0])
    return int(max(20, math.ceil(far * 2.5), predictions_per_session * 1.5))


def break_even(lines: list[SessionLine], crossings: list[Crossing], predictions_per_session: int,
               title: str | None = None) -> go.Figure:
    """Cumulative session time against the number of predictions, one line per unit; crossings are marked where a
    faster-predicting unit (typically the Neural Engine) pays back its slower load and first prediction."""
    fig = go.Figure()
    span = break_even_span(lines, crossings, predictions_per_session)
    log = span > 100  # log-log: the start costs (ms to s) and the slopes stay readable together
    # float: a crossing far out (a tiny prediction-time difference) makes span an int numpy holds only as an object
    n = np.unique(np.round(np.geomspace(1, float(span), 160) if log else np.linspace(1, span, 120)))
    for line in lines:
        label = line.compute_units if line.eligible else f"{line.compute_units} (not eligible)"
        fig.add_trace(go.Scatter(
            x=n, y=line.at(n), mode="lines", name=label,
            line=dict(color=line.color, width=2.5 if line.eligible else 1.5,
                      dash=("dash" if not line.eligible else "dashdot" if line.hinted else "solid")),
            hovertemplate=(f"<b>{line.compute_units}</b><br>%{{x:.0f}} predictions: %{{y:,.0f}} ms"
                           f"<br>load + first prediction {ms(line.start_ms)}, then {ms(line.prediction_ms)} each"
                           f"<br>{line.runs} runs{'<br>' + line.note if line.note else ''}<extra></extra>")))
    for group in _nearby(crossings):
        fig.add_trace(go.Scatter(
            x=[c.predictions for c in group], y=[c.session_ms for c in group], mode="markers", showlegend=False,
            marker=dict(symbol="x", size=11, color=[unit_color(c.faster) for c in group]),
            hovertemplate=[f"{c.faster} pays back its slower start against {c.cheaper} after {c.predictions:.1f} "
                           f"predictions ({ms(c.session_ms)})<extra></extra>" for c in group]))
    # Each label on its own row above its crossing (an arrow points at it), so labels of nearby crossings never
    # print over each other (issue 12: "cpuAndNeuralEngine wins from 103" over "all wins from 89").
    for row, group in enumerate(_nearby(crossings)):
        first = group[0]
        color = unit_color(first.faster) if len(group) == 1 else "#1d232b"
        fig.add_annotation(
            x=math.log10(first.predictions) if log else first.predictions,
            y=math.log10(first.session_ms) if log and first.session_ms > 0 else first.session_ms,
            text=f"{' and '.join(c.faster for c in group)} win{'s' if len(group) == 1 else ''} from "
                 f"{math.ceil(first.predictions)}",
            showarrow=True, arrowhead=0, arrowwidth=1, arrowcolor=color, ax=-40, ay=-28 - LABEL_ROW_PX * row,
            xanchor="right", font=dict(size=11, color=color), bgcolor="rgba(255,255,255,0.85)")
    top = max([float(line.at(span)) for line in lines] + [1.0])
    bottom = min([line.start_ms for line in lines if line.start_ms > 0] + [top]) / 2 if log else 0
    fig.add_trace(go.Scatter(
        x=[predictions_per_session, predictions_per_session], y=[bottom, top], mode="lines+text", showlegend=False,
        line=dict(color="#5f6b7a", dash="dot", width=1), text=["", f"{predictions_per_session} per session"],
        textposition="bottom right", textfont=dict(size=11, color="#5f6b7a"), hoverinfo="skip"))
    base_layout(fig, title, height=380)
    fig.update_xaxes(title_text="predictions per session (one model load)", type="log" if log else "linear")
    fig.update_yaxes(title_text="expected session time (ms)", type="log" if log else "linear",
                     rangemode="normal" if log else "tozero")
    if log:
        fig.update_yaxes(duration_ticks(bottom, top))  # "20 ms", "2 s", not plotly's bare "2 5 2 5"
    return fig


LABEL_ROW_PX = 20  # vertical distance between the crossing labels' rows


def _nearby(crossings: list[Crossing], within: float = 0.15) -> list[list[Crossing]]:
    """Crossings grouped when they fall within 15% of each other, so their labels do not overprint."""
    groups: list[list[Crossing]] = []
    for c in sorted(crossings, key=lambda c: c.predictions):
        if groups and c.predictions <= groups[-1][0].predictions * (1 + within):
            groups[-1].append(c)
        else:
            groups.append([c])
    return groups


# --- cold start -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class StageRow:
    """Median stage times (ms) of successful runs of one (compute units, load kind); None: stage not reported
    (a cached load has no compile, only in-memory loads decrypt). ``total_ms`` is the median of the per-run sum."""

    compute_units: str
    load_kind: str
    runs: int
    decrypt: float | None
    compile: float | None
    load: float | None
    first_prediction: float | None
    total_ms: float | None

    @property
    def label(self) -> str:
        return f"{self.compute_units} · {LOAD_KIND_NAMES.get(self.load_kind, self.load_kind)}"


def cold_start(rows: list[StageRow], title: str | None = None) -> go.Figure:
    """Time to the first result split into decrypt, compile, load and first prediction: one stacked bar per
    (unit, load kind), the median of the per-run total marked beside it."""
    fig = go.Figure()
    labels = [r.label for r in rows]
    for stage in LAUNCH_STAGES:
        values = [getattr(r, stage) or 0.0 for r in rows]
        if not any(values):
            continue
        fig.add_trace(go.Bar(
            y=labels, x=values, orientation="h", name=STAGE_NAMES[stage], marker_color=STAGE_COLORS[stage],
            customdata=[[r.runs] for r in rows],
            hovertemplate=f"%{{y}}<br>{STAGE_NAMES[stage]}: %{{x:,.1f}} ms (median, %{{customdata[0]}} runs)"
                          f"<extra></extra>"))
    fig.add_trace(go.Scatter(
        y=labels, x=[r.total_ms for r in rows], mode="markers", name="median total",
        marker=dict(symbol="line-ns", size=16, line=dict(width=2, color="#1d232b")),
        hovertemplate="%{y}<br>median time to first result: %{x:,.1f} ms<extra></extra>"))
    base_layout(fig, title, height=max(240, 34 * len(rows) + 110))
    fig.update_layout(barmode="stack")
    fig.update_xaxes(title_text="ms (medians of successful runs)", rangemode="tozero")
    fig.update_yaxes(autorange="reversed")
    return fig


# --- variant A/B ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class VariantRow:
    """median(candidate) - median(baseline) of one metric, for one (compute units, load kind)."""

    compute_units: str
    load_kind: str
    baseline: str
    candidate: str
    baseline_median: float
    candidate_median: float
    difference: float
    low: float
    high: float
    p_value: float
    runs_baseline: int
    runs_candidate: int
    enough: bool

    @property
    def label(self) -> str:
        return (f"{self.candidate or '(none)'} vs {self.baseline or '(none)'} · {self.compute_units} · "
                f"{LOAD_KIND_NAMES.get(self.load_kind, self.load_kind)}")

    @property
    def p_text(self) -> str:
        return "<0.0001" if self.p_value < 0.0001 else f"{self.p_value:.4f}"

    @property
    def verdict(self) -> str:
        """"faster" / "slower" when the interval excludes 0 and both sides have enough runs, else "unclear"."""
        if not self.enough:
            return "too few runs"
        if self.high < 0:
            return "faster"
        if self.low > 0:
            return "slower"
        return "no clear difference"


VERDICT_COLORS = {"faster": "#1a7f37", "slower": FAILURE_COLOR, "no clear difference": "#5f6b7a",
                  "too few runs": "#9aa4b1"}


def variant_differences(rows: list[VariantRow], metric_label: str, title: str | None = None) -> go.Figure:
    """Median difference with its interval per comparison; left of zero the candidate is faster."""
    fig = go.Figure()
    for verdict, color in VERDICT_COLORS.items():
        mine = [r for r in rows if r.verdict == verdict]
        if not mine:
            continue
        fig.add_trace(go.Scatter(
            y=[r.label for r in mine], x=[r.difference for r in mine], mode="markers", name=verdict,
            marker=dict(size=10, color=color),
            error_x=dict(type="data", symmetric=False, array=[r.high - r.difference for r in mine],
                         arrayminus=[r.difference - r.low for r in mine], color=color, thickness=1.5),
            customdata=[[r.baseline_median, r.candidate_median, r.low, r.high, r.p_value, r.runs_baseline,
                         r.runs_candidate] for r in mine],
            hovertemplate=("%{y}<br>difference %{x:+,.1f} ms [%{customdata[2]:+,.1f}, %{customdata[3]:+,.1f}]"
                           "<br>medians %{customdata[0]:,.1f} → %{customdata[1]:,.1f} ms"
                           "<br>Mann-Whitney p = %{customdata[4]:.3g}; runs %{customdata[5]} / %{customdata[6]}"
                           "<extra></extra>")))
    fig.add_vline(x=0, line=dict(color="#5f6b7a", width=1))
    base_layout(fig, title, height=max(220, 32 * len(rows) + 110))
    fig.update_yaxes(categoryorder="array", categoryarray=[r.label for r in rows])
    fig.update_xaxes(title_text=f"{metric_label}: median(candidate) − median(baseline), ms (95% interval)")
    fig.update_yaxes(autorange="reversed")
    return fig

"""A single run: its warm-up curve, its launch timings and where its compute plan placed the ops."""
import plotly.graph_objects as go

from .common import STAGE_COLORS, base_layout, ms

PLAN_COLORS = {"neural_engine": "#6a4c93", "gpu": "#2a9d8f", "cpu": "#8c8c8c"}
PLAN_LABELS = {"neural_engine": "Neural Engine", "gpu": "GPU", "cpu": "CPU"}


def warmup_curve(first_prediction_ms: float | None, predictions_ms: list[float], *, title: str) -> go.Figure:
    """Prediction time in call order: #0 is the first prediction, then the warm ones; a line at the warm median."""
    fig = go.Figure()
    if first_prediction_ms is not None:
        fig.add_trace(go.Scatter(x=[0], y=[first_prediction_ms], mode="markers", name="first prediction",
                                 marker=dict(size=10, color=STAGE_COLORS["first_prediction"]),
                                 hovertemplate="first prediction: %{y:.2f} ms<extra></extra>"))
    if predictions_ms:
        fig.add_trace(go.Scatter(x=list(range(1, len(predictions_ms) + 1)), y=list(predictions_ms),
                                 mode="lines+markers", name="warm predictions", marker=dict(size=4),
                                 line=dict(color="#457b9d", width=1.5),
                                 hovertemplate="prediction #%{x}: %{y:.2f} ms<extra></extra>"))
        median = sorted(predictions_ms)[len(predictions_ms) // 2]
        fig.add_hline(y=median, line=dict(color="#457b9d", dash="dot", width=1),
                      annotation_text=f"warm median ≈ {ms(median)}", annotation_position="top right")
    base_layout(fig, title, height=340)
    fig.update_xaxes(title="prediction (0 = first)", rangemode="tozero")
    fig.update_yaxes(title="ms", rangemode="tozero")
    return fig


def launch_timings(timings: dict, *, title: str) -> go.Figure:
    """One horizontal stacked bar: decrypt, compile, load, first prediction (missing stages are left out)."""
    fig = go.Figure()
    for stage, label in (("decrypt", "decrypt"), ("compile", "compile"), ("load", "load"),
                         ("first_prediction", "first prediction")):
        value = timings.get(stage)
        if value is None:
            continue
        fig.add_trace(go.Bar(y=["launch"], x=[value], orientation="h", name=f"{label} {ms(value)}",
                             marker_color=STAGE_COLORS[stage], text=[ms(value)], textposition="inside",
                             hovertemplate=f"{label}: {ms(value)}<extra></extra>"))
    base_layout(fig, title, height=200)
    fig.update_layout(barmode="stack")
    fig.update_xaxes(title="ms")
    fig.update_yaxes(showticklabels=False)
    return fig


def plan_placement(by_device: dict, *, title: str) -> go.Figure:
    """Ops and estimated cost per compute device: by_device {device: {"ops": n, "cost": summed cost or None}}."""
    devices = [d for d in PLAN_LABELS if d in by_device]
    total_ops = sum(by_device[d]["ops"] for d in devices) or 1
    total_cost = sum(by_device[d]["cost"] or 0 for d in devices)
    fig = go.Figure()
    for d in devices:
        ops, cost = by_device[d]["ops"], by_device[d]["cost"] or 0
        y = ["ops"] + (["estimated cost"] if total_cost else [])
        x = [ops / total_ops] + ([cost / total_cost] if total_cost else [])
        fig.add_trace(go.Bar(y=y, x=x, orientation="h", name=f"{PLAN_LABELS[d]} ({ops} ops)",
                             marker_color=PLAN_COLORS[d], text=[f"{v:.0%}" for v in x], textposition="inside",
                             hovertemplate=f"{PLAN_LABELS[d]}: %{{x:.1%}}<extra></extra>"))
    base_layout(fig, title, height=220)
    fig.update_layout(barmode="stack")
    fig.update_xaxes(tickformat=".0%", range=[0, 1])
    return fig

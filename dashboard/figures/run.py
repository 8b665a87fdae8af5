"""A single run: its warm-up curve, its launch timings and where its compute plan placed the ops."""
from insights.vocabulary import LAUNCH_STAGES, STAGE_NAMES

from .common import STAGE_COLORS, figure, layout, ms

PLAN_COLORS = {"neural_engine": "#6a4c93", "gpu": "#2a9d8f", "cpu": "#8c8c8c"}
PLAN_LABELS = {"neural_engine": "Neural Engine", "gpu": "GPU", "cpu": "CPU"}


def warmup_curve(first_prediction_ms: float | None, predictions_ms: list[float], *, title: str):
    """Prediction time in call order: #0 is the first prediction, then the warm ones; a line at the warm median."""
    data, shapes, notes = [], [], []
    if first_prediction_ms is not None:
        data.append(dict(type="scatter", x=[0], y=[first_prediction_ms], mode="markers", name="first prediction",
                         marker=dict(size=10, color=STAGE_COLORS["first_prediction"]),
                         hovertemplate="first prediction: %{y:.2f} ms<extra></extra>"))
    if predictions_ms:
        data.append(dict(type="scatter", x=list(range(1, len(predictions_ms) + 1)), y=list(predictions_ms),
                         mode="lines+markers", name="warm predictions", marker=dict(size=4),
                         line=dict(color="#457b9d", width=1.5),
                         hovertemplate="prediction #%{x}: %{y:.2f} ms<extra></extra>"))
        median = sorted(predictions_ms)[len(predictions_ms) // 2]
        shapes.append(dict(type="line", xref="paper", x0=0, x1=1, y0=median, y1=median,
                           line=dict(color="#457b9d", dash="dot", width=1)))
        notes.append(dict(xref="paper", x=1, y=median, text=f"warm median ≈ {ms(median)}", showarrow=False,
                          xanchor="right", yanchor="bottom", font=dict(color="#457b9d")))
    return figure(data, layout(title, height=340, shapes=shapes, annotations=notes,
                               xaxis=dict(title=dict(text="prediction (0 = first)"), rangemode="tozero"),
                               yaxis=dict(title=dict(text="ms"), rangemode="tozero")))


def launch_timings(timings: dict, *, title: str):
    """One horizontal stacked bar: decrypt, compile, load, first prediction (missing stages are left out)."""
    data = []
    for stage in LAUNCH_STAGES:
        label = STAGE_NAMES[stage]
        value = timings.get(stage)
        if value is None:
            continue
        data.append(dict(type="bar", y=["launch"], x=[value], orientation="h", name=f"{label} {ms(value)}",
                         marker=dict(color=STAGE_COLORS[stage]), text=[ms(value)], textposition="inside",
                         hovertemplate=f"{label}: {ms(value)}<extra></extra>"))
    return figure(data, layout(title, height=200, barmode="stack", xaxis=dict(title=dict(text="ms")),
                               yaxis=dict(showticklabels=False)))


def plan_placement(by_device: dict, *, title: str):
    """Ops and estimated cost per compute device: by_device {device: {"ops": n, "cost": summed cost or None}}."""
    devices = [d for d in PLAN_LABELS if d in by_device]
    total_ops = sum(by_device[d]["ops"] for d in devices) or 1
    total_cost = sum(by_device[d]["cost"] or 0 for d in devices)
    data = []
    for d in devices:
        ops, cost = by_device[d]["ops"], by_device[d]["cost"] or 0
        y = ["ops"] + (["estimated cost"] if total_cost else [])
        x = [ops / total_ops] + ([cost / total_cost] if total_cost else [])
        data.append(dict(type="bar", y=y, x=x, orientation="h", name=f"{PLAN_LABELS[d]} ({ops} ops)",
                         marker=dict(color=PLAN_COLORS[d]), text=[f"{v:.0%}" for v in x], textposition="inside",
                         hovertemplate=f"{PLAN_LABELS[d]}: %{{x:.1%}}<extra></extra>"))
    return figure(data, layout(title, height=220, barmode="stack", xaxis=dict(tickformat=".0%", range=[0, 1])))

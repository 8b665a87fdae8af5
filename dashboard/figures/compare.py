"""The compare page: distributions per device (or chip) grouped by compute unit, failure rates with Wilson
intervals, the launch-time breakdown per unit, and first vs warm prediction."""
from dataclasses import dataclass

from insights.vocabulary import LAUNCH_STAGES, LOAD_KIND_NAMES, STAGE_NAMES

from .common import STAGE_COLORS, UNIT_COLORS, figure, layout, ms, percent


@dataclass(frozen=True)
class Box:
    """Precomputed box: whiskers (low, high), quartiles and median, and the runs behind them."""

    low: float
    q1: float
    median: float
    q3: float
    high: float
    n: int


def box_plot(rows: list[str], units: list[str], boxes: dict, *, title: str, value_label: str, min_runs: int,
             log_y: bool = True):
    """rows: x categories (devices or chips, in order); boxes: {(row, unit): Box}. One box per row and unit, grouped
    by unit (one colour each). Boxes with fewer than `min_runs` runs are drawn faint, in a separate legend entry."""
    data = []
    for unit in units:
        has_sure = any((row, unit) in boxes and boxes[(row, unit)].n >= min_runs for row in rows)
        for sure in (True, False):
            keys = [(row, unit) for row in rows if (row, unit) in boxes and (boxes[(row, unit)].n >= min_runs) == sure]
            if not keys:
                continue
            bs = [boxes[k] for k in keys]
            data.append(dict(
                type="box", x=[k[0] for k in keys], q1=[b.q1 for b in bs], median=[b.median for b in bs],
                q3=[b.q3 for b in bs], lowerfence=[b.low for b in bs], upperfence=[b.high for b in bs],
                name=unit if sure else f"{unit} (fewer than {min_runs} runs)", legendgroup=unit,
                offsetgroup=unit, alignmentgroup="units", marker=dict(color=UNIT_COLORS.get(unit)),
                opacity=1.0 if sure else 0.35, boxpoints=False, showlegend=sure or not has_sure,
                hovertext=[f"{k[0]} · {unit}<br>median {ms(b.median)}<br>middle half {ms(b.q1)} – {ms(b.q3)}"
                           f"<br>5–95% {ms(b.low)} – {ms(b.high)}<br>{b.n} runs" for k, b in zip(keys, bs)],
                hoverinfo="text"))
    return figure(data, layout(
        title, height=460, boxmode="group", boxgap=0.25, boxgroupgap=0.1,
        xaxis=dict(type="category", categoryorder="array", categoryarray=list(rows), tickangle=-35),
        yaxis=dict(title=dict(text=value_label), type="log" if log_y else "linear")))


@dataclass(frozen=True)
class Rate:
    failures: int
    runs: int
    low: float
    high: float

    @property
    def rate(self) -> float:
        return self.failures / self.runs if self.runs else 0.0


def failure_bars(rows: list[str], units: list[str], rates: dict, *, title: str):
    """Failure rate per row and unit as grouped bars with asymmetric Wilson 95% error bars; rates: {(row, unit): Rate}.
    A bar of height 0 still shows its interval, so "no failures in 5 runs" reads as uncertain."""
    data = []
    for unit in units:
        keys = [(row, unit) for row in rows if (row, unit) in rates]
        if not keys:
            continue
        rs = [rates[k] for k in keys]
        data.append(dict(
            type="bar", x=[k[0] for k in keys], y=[r.rate for r in rs], name=unit, offsetgroup=unit,
            marker=dict(color=UNIT_COLORS.get(unit)),
            error_y=dict(type="data", symmetric=False, array=[r.high - r.rate for r in rs],
                         arrayminus=[r.rate - r.low for r in rs], color="#555", thickness=1.2, width=3),
            # Counts written on bars that stand out (1% and more); every bar has them on hover.
            text=[f"{r.failures}/{r.runs}" if r.failures and r.rate >= 0.01 else "" for r in rs], textposition="outside",
            hovertext=[f"{k[0]} · {unit}<br>{r.failures} of {r.runs} runs failed ({percent(r.rate)})"
                       f"<br>95% interval {percent(r.low)} – {percent(r.high)}" for k, r in zip(keys, rs)],
            hoverinfo="text", cliponaxis=False))
    return figure(data, layout(
        title, height=400, barmode="group", bargap=0.2,
        xaxis=dict(type="category", categoryorder="array", categoryarray=list(rows), tickangle=-35),
        yaxis=dict(title=dict(text="failure rate"), tickformat=".0%", rangemode="tozero")))


LOAD_KIND_LABELS = {kind: f"{name} load" for kind, name in LOAD_KIND_NAMES.items()}


def breakdown_bars(units: list[str], stages: dict, counts: dict, *, title: str):
    """Stacked launch time per (load kind, unit): stages {(load_kind, unit): {stage: median ms}}, counts
    {(load_kind, unit): runs}. x is a two-level axis: load kind, then unit."""
    kinds = [k for k in LOAD_KIND_LABELS if any((k, u) in stages for u in units)]
    keys = [(k, u) for k in kinds for u in units if (k, u) in stages]
    x = [[LOAD_KIND_LABELS[k] for k, _ in keys], [u for _, u in keys]]
    data = []
    for stage in LAUNCH_STAGES:
        label = STAGE_NAMES[stage]
        values = [stages[key].get(stage) for key in keys]
        if all(v is None for v in values):
            continue
        data.append(dict(
            type="bar", x=x, y=[v or 0.0 for v in values], name=label, marker=dict(color=STAGE_COLORS[stage]),
            hovertext=[f"{LOAD_KIND_LABELS[k]} · {u}<br>{label}: {ms(v)} (median of {counts.get((k, u), 0)} runs)"
                       for (k, u), v in zip(keys, values)], hoverinfo="text"))
    totals = [sum(v or 0.0 for v in stages[key].values()) for key in keys]
    data.append(dict(type="scatter", x=x, y=totals, mode="text", text=[ms(t) for t in totals],
                     textposition="top center", showlegend=False, hoverinfo="skip"))
    return figure(data, layout(title, height=420, barmode="stack",
                               yaxis=dict(title=dict(text="ms (median of each stage)"), rangemode="tozero")))


def first_vs_warm(units: list[str], first: dict, warm: dict, counts: dict, *, title: str):
    """First prediction next to the median warm prediction per unit: first {unit: ms}, warm {unit: ms},
    counts {unit: runs}."""
    present = [u for u in units if first.get(u) is not None or warm.get(u) is not None]
    data = [
        dict(type="bar", x=present, y=[first.get(u) for u in present], name="first prediction",
             marker=dict(color=STAGE_COLORS["first_prediction"]), text=[ms(first.get(u)) for u in present],
             textposition="outside", cliponaxis=False),
        dict(type="bar", x=present, y=[warm.get(u) for u in present], name="warm prediction (median)",
             marker=dict(color="#457b9d"), text=[ms(warm.get(u)) for u in present], textposition="outside",
             cliponaxis=False),
    ]
    ratios = [f"{first[u] / warm[u]:.1f}x" if first.get(u) and warm.get(u) else "" for u in present]
    return figure(data, layout(
        title, height=380, barmode="group",
        xaxis=dict(type="category", tickvals=present,
                   ticktext=[f"{u}<br>first = {r} warm · {counts.get(u, 0)} runs" for u, r in zip(present, ratios)]),
        yaxis=dict(title=dict(text="ms"), rangemode="tozero")))

"""The compare page: distributions per device (or chip) grouped by compute unit, failure rates with Wilson
intervals, the launch-time breakdown per unit, and first vs warm prediction."""
from dataclasses import dataclass

from insights.vocabulary import LAUNCH_STAGES, LOAD_KIND_NAMES, STAGE_NAMES

from .common import STAGE_COLORS, UNIT_COLORS, duration_ticks, figure, layout, ms, percent


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
    yaxis = dict(title=dict(text=value_label), type="log" if log_y else "linear")
    positive = [v for b in boxes.values() for v in (b.low, b.high) if v and v > 0]
    if log_y and positive:
        yaxis.update(duration_ticks(min(positive), max(positive)))
    return figure(data, layout(
        title, height=460, boxmode="group", boxgap=0.25, boxgroupgap=0.1,
        xaxis=dict(type="category", categoryorder="array", categoryarray=list(rows), tickangle=-35), yaxis=yaxis))


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
    """Failure rate per row and unit, grouped by unit; rates: {(row, unit): Rate}. A solid bar, its count written on
    it, only where runs failed; behind it the Wilson 95% interval as a faint band of the unit's colour, also where
    none failed, so "0 of 5 runs" still reads as uncertain without whiskers drawn across the chart. The y axis fits
    the failures seen (at least 10%): a band reaching past it is cut at the top, its hover gives the interval."""
    data = []
    for unit in units:
        keys = [(row, unit) for row in rows if (row, unit) in rates]
        if not keys:
            continue
        rs = [rates[k] for k in keys]
        color = UNIT_COLORS.get(unit)
        hover = [f"{k[0]} · {unit}<br>{r.failures} of {r.runs} runs failed ({percent(r.rate)})"
                 f"<br>95% interval {percent(r.low)} – {percent(r.high)}" for k, r in zip(keys, rs)]
        failed = [i for i, r in enumerate(rs) if r.failures]
        # Same offsetgroup: the band and the bar share one slot, the bar drawn over the band. A unit without
        # failures has no bar, so its band names it in the legend.
        data.append(dict(
            type="bar", x=[k[0] for k in keys], base=[r.low for r in rs], y=[r.high - r.low for r in rs],
            name=unit if not failed else f"{unit}: 95% interval", legendgroup=unit, offsetgroup=unit,
            showlegend=not failed, opacity=0.15, marker=dict(color=color, line=dict(width=0)), hovertext=hover,
            hoverinfo="text"))
        data.append(dict(
            type="bar", x=[keys[i][0] for i in failed], y=[rs[i].rate for i in failed], name=unit, legendgroup=unit,
            offsetgroup=unit, marker=dict(color=color), text=[f"{rs[i].failures}/{rs[i].runs}" for i in failed],
            textposition="outside", cliponaxis=False, hovertext=[hover[i] for i in failed], hoverinfo="text"))
    top = max([r.rate for r in rates.values()] + [0.0])
    return figure(data, layout(
        title, height=400, barmode="group", bargap=0.2,
        xaxis=dict(type="category", categoryorder="array", categoryarray=list(rows), tickangle=-35),
        yaxis=dict(title=dict(text="failure rate (band: 95% interval)"), tickformat=".0%",
                   range=[0, min(1.0, max(0.1, top * 1.3))])))


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

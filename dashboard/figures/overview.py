"""The overview's device x compute-unit matrices (heatmaps), one per metric.

Time metrics are coloured by how much slower a cell is than the fastest well-sampled unit of the same device (1x
green, 4x and more red), so each row reads as "which unit should this device use"; the value in ms and the number of
runs are written in every cell. Crash (failure) rates are coloured by the rate itself. A cell with fewer runs than
`min_runs` is drawn grey with its sample count and "too few": shown, not coloured as if it were certain; for failure
rates such a cell is pale red when it did fail, because a crash on few runs is still worth looking at.

In a time matrix a unit that fails more often than the policy allows (``max_failure_rate``, the policy's gate) is
never coloured on the speed scale, however fast it is: it gets a colour of its own (dark, framed in dotted red, its
failure rate written first), is left out when the row's fastest unit is found, and so cannot look like the best choice.
"""
import math
from dataclasses import dataclass

from .common import UNDERSAMPLED_COLOR, figure, layout, ms, percent

SPEED_SCALE = [[0.0, "#1a9850"], [0.25, "#a6d96a"], [0.5, "#fee08b"], [0.75, "#fc8d59"], [1.0, "#d73027"]]
RATE_SCALE = [[0.0, "#ffffff"], [0.02, "#fde0dd"], [0.3, "#fa9fb5"], [1.0, "#a50f15"]]
FEW_FAILING_COLOR = "#f6d5d5"
FAILING_COLOR = "#3b2f3f"  # a unit failing above the policy's gate: outside the green-to-red speed scale
FAILING_TEXT_COLOR = "#ffd7d7"
MAX_SLOWDOWN = 4.0  # the colour scale saturates at 4x the fastest unit


@dataclass(frozen=True)
class Cell:
    """One (device, unit) cell: the median (or rate), its sample count, an optional interval, the policy mark."""

    value: float | None
    n: int
    low: float | None = None
    high: float | None = None
    recommended: bool = False
    failures: int | None = None  # for rates: the numerator
    failure_rate: float | None = None  # for times: the cell's failure rate, flagged above `max_failure_rate`
    on_cpu: bool = False  # a Neural Engine unit whose runs silently ran on the CPU (insights.fallback)


def heatmap(rows: list[str], units: list[str], cells: dict, *, title: str, min_runs: int,
            kind: str = "time", max_failure_rate: float | None = None):
    """rows: device labels, top to bottom (oldest chip first); units: columns; cells: {(row, unit): Cell}.

    kind "time": values in ms, coloured relative to the row's fastest sampled cell that does not fail too often; a
    cell whose failure rate is above `max_failure_rate` (however many runs it has) is drawn in a trace of its own,
    dark with a dotted red frame, its text led by "⚠ 31% failed", so a fast but crashing unit never looks like a good choice.
    kind "rate": values in [0, 1].
    The traces, in order: enough runs (coloured), fewer than `min_runs` (grey), then for rates failures on few runs
    (pale red) or for times units failing above `max_failure_rate` (dark).
    """
    if kind not in ("time", "rate"):
        raise ValueError("kind is 'time' or 'rate'")
    sure_z, sure_text, sure_hover = [], [], []
    few_z, few_text, few_hover = [], [], []
    failing_z, failing_text, failing_hover = [], [], []
    shapes = []

    def fails_too_often(cell: Cell) -> bool:
        return (kind == "time" and max_failure_rate is not None and cell.failure_rate is not None
                and cell.failure_rate > max_failure_rate)

    for r, row in enumerate(rows):
        sampled = [cells[(row, u)].value for u in units
                   if (row, u) in cells and cells[(row, u)].n >= min_runs and cells[(row, u)].value is not None
                   and not fails_too_often(cells[(row, u)])]
        best = min(sampled) if sampled and kind == "time" else None
        zs, ts, hs, fz, ft, fh, xz, xt, xh = [], [], [], [], [], [], [], [], []
        for c, unit in enumerate(units):
            cell = cells.get((row, unit), Cell(None, 0))
            label = _value_text(cell, kind)
            interval = _interval_text(cell, kind)
            hover = f"{label}<br>{cell.n} runs{interval}"
            if fails_too_often(cell):
                zs.append(None), ts.append(""), hs.append("")
                fz.append(None), ft.append(""), fh.append("")
                few = " · too few" if cell.n < min_runs else ""
                xz.append(0.0), xt.append(f"<b>⚠ {percent(cell.failure_rate)} failed</b><br>{label} · n={cell.n}{few}")
                xh.append(f"{hover}<br><b>{percent(cell.failure_rate)} of runs failed</b>, above the "
                          f"{percent(max_failure_rate)} the policy allows: not a choice, however fast")
                shapes.append(_failing_frame(c, r))
                if cell.recommended:  # never, from the policy rule; if a caller says so, show it
                    shapes.append(_frame(c, r))
            elif cell.n >= min_runs and cell.value is not None:
                if kind == "time":
                    ratio = cell.value / best if best else 1.0
                    zs.append(min(math.log(max(ratio, 1.0), MAX_SLOWDOWN), 1.0))
                    hover += f"<br>{ratio:.2f}x the fastest unit on this device"
                else:
                    zs.append(cell.value)
                mark = "★ " if cell.recommended else ""
                cpu = "<br>⚠ runs on the CPU" if cell.on_cpu else ""
                ts.append(f"{mark}{label}<br>n={cell.n}{cpu}")
                hs.append(hover + ("<br>★ policy choice" if cell.recommended else "")
                          + ("<br><b>runs on the CPU</b>: asked for the Neural Engine, but its plans or its timings "
                             "(like cpuOnly's) show the CPU did the work" if cell.on_cpu else ""))
                fz.append(None), ft.append(""), fh.append("")
                xz.append(None), xt.append(""), xh.append("")
                if cell.recommended:
                    shapes.append(_frame(c, r))
            elif kind == "rate" and cell.n and _failures(cell):
                zs.append(None), ts.append(""), hs.append("")
                fz.append(None), ft.append(""), fh.append("")
                xz.append(0.0), xt.append(f"{_failures(cell)}/{cell.n} failed<br>too few runs")
                xh.append(hover + f"<br>fewer than {min_runs} runs: rate uncertain, failures seen")
            else:
                zs.append(None), ts.append(""), hs.append("")
                xz.append(None), xt.append(""), xh.append("")
                fz.append(0.0)
                if cell.n == 0:
                    ft.append("no runs")
                    fh.append("no runs")
                else:
                    ft.append(f"{label}<br>n={cell.n} · too few")
                    fh.append(hover + f"<br>fewer than {min_runs} runs: not reliable")
        sure_z.append(zs), sure_text.append(ts), sure_hover.append(hs)
        few_z.append(fz), few_text.append(ft), few_hover.append(fh)
        failing_z.append(xz), failing_text.append(xt), failing_hover.append(xh)

    if kind == "time":
        colorbar = dict(title=dict(text="vs fastest<br>unit on device", side="top"), tickvals=[0, 0.5, 1],
                        ticktext=["1x", "2x", f"≥{MAX_SLOWDOWN:g}x"], len=min(1.0, 300 / max(len(rows) * 30, 1)),
                        y=1, yanchor="top", thickness=12)
        scale, zmin, zmax = SPEED_SCALE, 0.0, 1.0
    else:
        top = max([max(v for v in row if v is not None) for row in sure_z if any(v is not None for v in row)]
                  + [0.05])
        colorbar = dict(title=dict(text="failure rate", side="top"), tickformat=".0%", thickness=12,
                        len=min(1.0, 300 / max(len(rows) * 30, 1)), y=1, yanchor="top")
        scale, zmin, zmax = RATE_SCALE, 0.0, top
    hover = "%{y}<br>%{x}<br>%{customdata}<extra></extra>"
    common = dict(type="heatmap", x=list(units), y=list(rows), texttemplate="%{text}", hovertemplate=hover,
                  xgap=2, ygap=2)
    data = [
        dict(common, z=sure_z, text=sure_text, customdata=sure_hover, colorscale=scale, zmin=zmin, zmax=zmax,
             colorbar=colorbar, name="enough runs", textfont=dict(size=11)),
        dict(common, z=few_z, text=few_text, customdata=few_hover, showscale=False,
             colorscale=[[0, UNDERSAMPLED_COLOR], [1, UNDERSAMPLED_COLOR]], name=f"fewer than {min_runs} runs",
             textfont=dict(size=10, color="#6b7480")),
    ]
    if any(v is not None for row in failing_z for v in row):
        if kind == "rate":
            data.append(dict(common, z=failing_z, text=failing_text, customdata=failing_hover, showscale=False,
                             colorscale=[[0, FEW_FAILING_COLOR], [1, FEW_FAILING_COLOR]],
                             name=f"fewer than {min_runs} runs, with failures",
                             textfont=dict(size=10, color="#8b1a1a")))
        else:
            data.append(dict(common, z=failing_z, text=failing_text, customdata=failing_hover, showscale=False,
                             colorscale=[[0, FAILING_COLOR], [1, FAILING_COLOR]],
                             name=f"fails in more than {percent(max_failure_rate)} of runs",
                             textfont=dict(size=11, color=FAILING_TEXT_COLOR)))
    return figure(data, layout(
        title, height=max(260, 34 * len(rows) + 120), shapes=shapes, margin=dict(l=10, r=10, t=90, b=10),
        xaxis=dict(side="top", type="category", showgrid=False),
        yaxis=dict(autorange="reversed", type="category", showgrid=False)))


def _frame(c: int, r: int) -> dict:
    """The policy choice's dark frame around cell (column c, row r)."""
    return dict(type="rect", xref="x", yref="y", x0=c - 0.48, x1=c + 0.48, y0=r - 0.46, y1=r + 0.46,
                line=dict(color="#111820", width=2.5))


def _failing_frame(c: int, r: int) -> dict:
    """A dashed red frame around cell (column c, row r): a failing unit reads as such without colour vision."""
    return dict(type="rect", xref="x", yref="y", x0=c - 0.47, x1=c + 0.47, y0=r - 0.44, y1=r + 0.44,
                line=dict(color="#e53935", width=2, dash="dot"))


def _failures(cell: Cell) -> int:
    if cell.failures is not None:
        return cell.failures
    return round((cell.value or 0.0) * cell.n)


def _value_text(cell: Cell, kind: str) -> str:
    if cell.value is None:
        return "–"
    if kind == "time":
        return ms(cell.value)
    return f"{percent(cell.value)} ({_failures(cell)}/{cell.n})"


def _interval_text(cell: Cell, kind: str) -> str:
    if cell.low is None or cell.high is None:
        return ""
    if kind == "rate":
        return f"<br>95% interval {percent(cell.low)} – {percent(cell.high)}"
    return f"<br>95% interval {ms(cell.low)} – {ms(cell.high)}"
